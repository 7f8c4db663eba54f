//! The API's methods: params in, supervisor call, result out. Each method
//! is documented in docs/api.md.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::access::Access;
use super::admin_methods;
use super::params::{
    ApplyParams, EventsParams, LogsParams, MethodParams, PullParams, ShutdownParams, UpdateParams,
    WaitParams,
};
use super::protocol::{
    CONFIG_INVALID, CONTAINER_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, RpcError,
};
use super::reply::{supervisor_error, to_value};
use super::subscriptions::{EventFilter, EventSubscription};
use crate::supervisor::Supervisor;
use crate::supervisor::ops::pull::{LinkOptions, PullOutcome, PullProgress};
use crate::supervisor::ops::reload::spec_hash;
use crate::supervisor::ops::wait::Completion;
use crate::supervisor::output::follow::{LogCursor, parse_since, read_container_log};
use crate::supervisor::output::logs::LogEntry;
use crate::supervisor::runtime::container::State;
use crate::supervisor::spec::redact::REDACTED;

/// What a request produced: an answer now, or one that comes when the
/// supervisor completes the request's token.
pub enum Outcome {
    Reply(Result<Value, RpcError>),
    Deferred,
    /// `logs` with `follow`: the server sends `entries`, then what the
    /// cursor finds each turn, until `follow_result` says it is over.
    Follow(LogFollow),
    /// `events` with `follow`: replayed and new events as notifications
    /// until the client goes away.
    Subscribe(EventSubscription),
    /// `exec`: started by the server, which knows the caller and passes
    /// the pipes (api/server/exec.rs).
    Exec(Box<super::params::ExecParams>),
    /// `run -i`/`-t`: deferred like Deferred, after a `run.started`
    /// notification that carries these descriptors (SCM_RIGHTS), named.
    Attached(super::run_method::Attached),
}

pub struct LogFollow {
    pub name: String,
    pub entries: Vec<LogEntry>,
    pub cursor: LogCursor,
}

/// Runs one method. `token` identifies this request if its answer has to
/// wait for the supervisor; `access` decides what the answer may show
/// (`inspect` redacts for read-only callers). Params are parsed and
/// bounded first, whatever the method (params.rs).
pub fn dispatch(
    sup: &mut Supervisor,
    method: &str,
    params: Value,
    token: u64,
    access: Access,
) -> Outcome {
    let params = match MethodParams::parse(method, params) {
        Ok(p) => p,
        Err(e) => return Outcome::Reply(Err(e)),
    };
    match params {
        MethodParams::Run(p) => super::run_method::run(sup, *p, token),
        MethodParams::Wait(p) => wait(sup, p, token),
        MethodParams::Pull(p) => pull(sup, p, token),
        MethodParams::Update(p) => update(sup, p, token),
        MethodParams::Apply(p) => apply(sup, p, token),
        MethodParams::Logs(p) => logs(sup, p).unwrap_or_else(|e| Outcome::Reply(Err(e))),
        MethodParams::Events(p) => events(sup, p).unwrap_or_else(|e| Outcome::Reply(Err(e))),
        MethodParams::Kill(p) => Outcome::Reply(admin_methods::kill(sup, p)),
        MethodParams::Rmi(p) => Outcome::Reply(admin_methods::rmi(sup, p)),
        MethodParams::Shutdown(p) => Outcome::Reply(shutdown(sup, p)),
        MethodParams::Exec(p) => Outcome::Exec(p),
        MethodParams::Name(p) => Outcome::Reply(by_name(sup, method, &p.name, access)),
        MethodParams::None => Outcome::Reply(without_params(sup, method)),
    }
}

fn by_name(
    sup: &mut Supervisor,
    method: &str,
    name: &str,
    access: Access,
) -> Result<Value, RpcError> {
    match method {
        "start" => {
            sup.start(name).map_err(supervisor_error)?;
            container_state(sup, name)
        }
        "stop" => {
            sup.stop_by_request(name).map_err(supervisor_error)?;
            container_state(sup, name)
        }
        "restart" => admin_methods::restart(sup, name),
        "inspect" => inspect(sup, name, access),
        "stats" => stats(sup, name),
        other => Err(unknown_method(other)),
    }
}

fn without_params(sup: &mut Supervisor, method: &str) -> Result<Value, RpcError> {
    match method {
        "version" => Ok(json!({"version": env!("CARGO_PKG_VERSION"), "api": 1})),
        "list" => to_value(sup.list()),
        "info" => admin_methods::info(sup),
        "writes" => admin_methods::writes(sup),
        "check" => admin_methods::check(sup),
        "images" => admin_methods::images(sup),
        "prune" => admin_methods::prune(sup),
        "reload" => reload(sup),
        other => Err(unknown_method(other)),
    }
}

/// Unreachable while params.rs and the matches above agree on the names.
fn unknown_method(method: &str) -> RpcError {
    RpcError::new(METHOD_NOT_FOUND, format!("unknown method {method:?}"))
}

fn wait(sup: &mut Supervisor, p: WaitParams, token: u64) -> Outcome {
    match sup.add_waiter(&p.name, token, p.logs) {
        Ok(()) => Outcome::Deferred,
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
    }
}

fn pull(sup: &mut Supervisor, p: PullParams, token: u64) -> Outcome {
    if let Err(e) = crate::fetch::reference::Reference::parse(&p.reference) {
        return Outcome::Reply(Err(RpcError::new(INVALID_PARAMS, e.to_string())));
    }
    let link = LinkOptions {
        max_rate: p.max_rate,
        max_parallel: p.max_parallel,
    };
    match sup.pull_for_client(&p.reference, p.platform.as_deref(), &link, token) {
        Ok(()) => Outcome::Deferred,
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
    }
}

/// `update`: checks now; the answer waits for the registry (a helper).
fn update(sup: &mut Supervisor, p: UpdateParams, token: u64) -> Outcome {
    let names: Vec<String> = p.name.into_iter().collect();
    match sup.request_update(&names, p.check, token) {
        Ok(()) => Outcome::Deferred,
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
    }
}

/// `apply`: the answer waits until the new config is stable or undone.
fn apply(sup: &mut Supervisor, p: ApplyParams, token: u64) -> Outcome {
    let path = p.path.map(std::path::PathBuf::from);
    match sup.request_apply(path.as_deref(), token) {
        Ok(()) => Outcome::Deferred,
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
    }
}

/// `logs`: the entries (after `since`, the last `tail`), as the reply or,
/// with `follow`, as the start of a stream.
fn logs(sup: &Supervisor, p: LogsParams) -> Result<Outcome, RpcError> {
    let since = p.since.as_ref().map(since_param).transpose()?;
    let c = sup.container(&p.name).map_err(supervisor_error)?;
    let path = c.log.path();
    let read_error = |e: std::io::Error| {
        RpcError::new(
            CONTAINER_ERROR,
            format!("container {}: read log {}: {e}", p.name, path.display()),
        )
    };
    let (entries, cursor) =
        read_container_log(&c.log, since, p.tail, p.follow).map_err(read_error)?;
    let Some(cursor) = cursor else {
        return Ok(Outcome::Reply(to_value(entries)));
    };
    Ok(Outcome::Follow(LogFollow {
        name: p.name,
        entries,
        cursor,
    }))
}

fn since_param(v: &Value) -> Result<SystemTime, RpcError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    parse_since(&text, SystemTime::now()).ok_or_else(|| {
        RpcError::new(
            INVALID_PARAMS,
            format!(
                "invalid params: since: {text} is not a time (unix seconds, RFC 3339 UTC, or a duration such as \"10m\")"
            ),
        )
    })
}

/// The notification carrying one followed log entry.
pub fn log_entry_line(name: &str, e: &LogEntry) -> Vec<u8> {
    let mut out = serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": "logs.entry", "params": {"name": name, "log": e.log, "stream": e.stream, "time": e.time}}))
        .unwrap_or_default();
    out.push(b'\n');
    out
}

/// The answer that ends a follow, once its container has exited for good
/// and its pipes are read to the end: the container's `list` object, or
/// null when it was removed (`run --rm`). None while more may come.
pub fn follow_result(sup: &Supervisor, name: &str) -> Option<Value> {
    match sup.container(name).ok() {
        None => Some(Value::Null),
        Some(c) if c.state() == State::Exited && c.outputs.is_empty() => {
            Some(serde_json::to_value(c.info()).unwrap_or(Value::Null))
        }
        Some(_) => None,
    }
}

/// The notification a pull's progress line becomes.
pub fn pull_progress_line(p: &PullProgress) -> Vec<u8> {
    let mut out = serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": "pull.progress", "params": {"reference": p.reference, "line": p.line}}))
        .unwrap_or_default();
    out.push(b'\n');
    out
}

/// The answer to a deferred `pull`.
pub fn pull_result(o: &PullOutcome) -> Result<Value, RpcError> {
    match &o.error {
        None => Ok(json!({"reference": o.reference, "exit_code": o.exit_code})),
        Some(e) => Err(RpcError::new(CONTAINER_ERROR, e.clone())),
    }
}

/// The answer to a deferred `run` or `wait`.
pub fn completion_result(c: Completion) -> Value {
    let mut v = serde_json::to_value(&c.info).unwrap_or(Value::Null);
    if let (Some(logs), Value::Object(map)) = (c.logs, &mut v) {
        map.insert(
            "logs".into(),
            serde_json::to_value(logs).unwrap_or(Value::Null),
        );
    }
    v
}

/// Reconciles with the config directory; an invalid one is refused with
/// every error (file:line:col) in `data.errors`.
fn reload(sup: &mut Supervisor) -> Result<Value, RpcError> {
    match sup.reload() {
        Ok(summary) => to_value(summary),
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            let mut e = RpcError::new(
                CONFIG_INVALID,
                format!(
                    "invalid config, nothing changed: {}",
                    list.first().cloned().unwrap_or_default()
                ),
            );
            e.data = Some(json!({"errors": list}));
            Err(e)
        }
    }
}

/// `list`'s record plus the spec, what isolation the run was given, and
/// its cgroup. A read-only caller gets the spec redacted (spec/redact.rs),
/// and `spec_hash` too: a hash of the full spec would let it test guesses
/// of what was redacted.
fn inspect(sup: &Supervisor, name: &str, access: Access) -> Result<Value, RpcError> {
    let c = sup.container(name).map_err(supervisor_error)?;
    let mut v = to_value(c.info())?;
    let (spec, hash) = match access {
        Access::Admin => (to_value(&c.spec)?, spec_hash(&c.spec)),
        Access::ReadOnly => (to_value(c.spec.redacted())?, REDACTED.to_string()),
    };
    if let Value::Object(map) = &mut v {
        map.insert("spec".into(), spec);
        map.insert("spec_hash".into(), Value::String(hash));
        map.insert("ip".into(), to_value(c.ip)?);
        map.insert("health_detail".into(), to_value(&c.health)?);
        map.insert("update".into(), c.update.view());
        map.insert("security".into(), to_value(&c.security)?);
        map.insert(
            "cgroup".into(),
            to_value(c.cgroup.as_ref().map(|cg| cg.path().to_string()))?,
        );
    }
    Ok(v)
}

/// CPU, memory and pids of a running container, from its cgroup.
fn stats(sup: &Supervisor, name: &str) -> Result<Value, RpcError> {
    let c = sup.container(name).map_err(supervisor_error)?;
    let cg = c.cgroup.as_ref().ok_or_else(|| {
        RpcError::new(
            CONTAINER_ERROR,
            format!("container {name} is not running ({:?})", c.state()),
        )
    })?;
    let mut v = to_value(cg.stats())?;
    if let Value::Object(map) = &mut v {
        map.insert("name".into(), Value::String(name.to_string()));
    }
    Ok(v)
}

pub(super) fn container_state(sup: &Supervisor, name: &str) -> Result<Value, RpcError> {
    let c = sup.container(name).map_err(supervisor_error)?;
    to_value(c.info())
}

/// `shutdown`: stops every container (in the supervisor's order) and then,
/// as PID 1, powers off (default), reboots or halts; otherwise the daemon
/// exits as on SIGTERM. The first request of a shutdown decides the action.
fn shutdown(sup: &mut Supervisor, p: ShutdownParams) -> Result<Value, RpcError> {
    use crate::supervisor::daemon::pid1;
    let action = pid1::request_shutdown(p.action.unwrap_or(pid1::ShutdownAction::Poweroff));
    let is_pid1 = pid1::mode().is_pid1();
    if !sup.is_shutting_down() {
        crate::supervisor::say(format_args!(
            "shutdown requested through the API{}",
            if is_pid1 {
                format!(", then {}", action.name())
            } else {
                String::new()
            }
        ));
    }
    sup.begin_shutdown();
    Ok(json!({"action": if is_pid1 { action.name() } else { "exit" }, "pid1": is_pid1}))
}

/// Events from the journal: a one-off read (`{events, oldest, last_seq}`),
/// or with `follow` a subscription (notifications `events.event`, and
/// `events.gap` when some were lost to the journal's bound).
fn events(sup: &mut Supervisor, p: EventsParams) -> Result<Outcome, RpcError> {
    let filter = EventFilter {
        kinds: p.kinds,
        container: p.container,
    };
    if p.follow {
        let after = p.since.unwrap_or_else(|| sup.events().last_seq());
        return Ok(Outcome::Subscribe(EventSubscription { after, filter }));
    }
    let limit = p.limit.unwrap_or(1000);
    let after = p.since.unwrap_or(0);
    let (events, oldest) = sup.events().since(after, limit);
    let matching: Vec<_> = events.into_iter().filter(|e| filter.matches(e)).collect();
    Ok(Outcome::Reply(Ok(json!({
        "events": matching,
        "oldest": oldest,
        "last_seq": sup.events().last_seq(),
    }))))
}
