//! The API's methods: params in, supervisor call, result out. Each method
//! is documented in docs/api.md.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::protocol::{
    CONFIG_INVALID, CONTAINER_ERROR, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, NO_SUCH_CONTAINER,
    RpcError,
    SHUTTING_DOWN,
};
use crate::supervisor::ephemeral::RunRequest;
use crate::supervisor::pulling::{PullOutcome, PullProgress};
use crate::supervisor::reload::spec_hash;
use crate::supervisor::spec::Spec;
use crate::supervisor::validate::check_spec;
use crate::supervisor::waiting::Completion;
use crate::supervisor::{Supervisor, SupervisorError};

/// What a request produced: an answer now, or one that comes when the
/// supervisor completes the request's token.
pub enum Outcome {
    Reply(Result<Value, RpcError>),
    Deferred,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameParams {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsParams {
    name: String,
    #[serde(default)]
    tail: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitParams {
    name: String,
    #[serde(default)]
    logs: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunParams {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rm: bool,
    #[serde(default)]
    wait: bool,
    spec: Spec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullParams {
    reference: String,
    #[serde(default)]
    platform: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// Runs one method. `token` identifies this request if its answer has to
/// wait for the supervisor.
pub fn dispatch(sup: &mut Supervisor, method: &str, params: Value, token: u64) -> Outcome {
    match method {
        "run" => run(sup, params, token),
        "wait" => wait(sup, params, token),
        "pull" => pull(sup, params, token),
        _ => Outcome::Reply(dispatch_now(sup, method, params)),
    }
}

fn dispatch_now(sup: &mut Supervisor, method: &str, params: Value) -> Result<Value, RpcError> {
    match method {
        "version" => {
            parse_params::<NoParams>(params)?;
            Ok(json!({"version": env!("CARGO_PKG_VERSION"), "api": 1}))
        }
        "list" => {
            parse_params::<NoParams>(params)?;
            to_value(sup.list())
        }
        "start" => {
            let p: NameParams = parse_params(params)?;
            sup.start(&p.name).map_err(supervisor_error)?;
            container_state(sup, &p.name)
        }
        "stop" => {
            let p: NameParams = parse_params(params)?;
            sup.stop_by_request(&p.name).map_err(supervisor_error)?;
            container_state(sup, &p.name)
        }
        "reload" => {
            parse_params::<NoParams>(params)?;
            reload(sup)
        }
        "inspect" => {
            let p: NameParams = parse_params(params)?;
            inspect(sup, &p.name)
        }
        "stats" => {
            let p: NameParams = parse_params(params)?;
            stats(sup, &p.name)
        }
        "logs" => {
            let p: LogsParams = parse_params(params)?;
            to_value(sup.logs(&p.name, p.tail).map_err(supervisor_error)?)
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("unknown method {other:?}"),
        )),
    }
}

fn run(sup: &mut Supervisor, params: Value, token: u64) -> Outcome {
    let p: RunParams = match parse_params(params) {
        Ok(p) => p,
        Err(e) => return Outcome::Reply(Err(e)),
    };
    if let Some((path, message)) = check_spec(&p.spec).into_iter().next() {
        let field = format!("spec.{}", path.join("."));
        return Outcome::Reply(Err(RpcError::new(
            INVALID_PARAMS,
            format!("{field}: {message}"),
        )));
    }
    let wait = p.wait.then_some((token, p.rm));
    let req = RunRequest {
        name: p.name,
        spec: p.spec,
        remove_on_exit: p.rm,
        wait,
    };
    match sup.run_ephemeral(req) {
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
        Ok(_) if p.wait => Outcome::Deferred,
        Ok(name) => Outcome::Reply(container_state(sup, &name)),
    }
}

fn wait(sup: &mut Supervisor, params: Value, token: u64) -> Outcome {
    let p: WaitParams = match parse_params(params) {
        Ok(p) => p,
        Err(e) => return Outcome::Reply(Err(e)),
    };
    match sup.add_waiter(&p.name, token, p.logs) {
        Ok(()) => Outcome::Deferred,
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
    }
}

fn pull(sup: &mut Supervisor, params: Value, token: u64) -> Outcome {
    let p: PullParams = match parse_params(params) {
        Ok(p) => p,
        Err(e) => return Outcome::Reply(Err(e)),
    };
    if let Err(e) = crate::fetch::reference::Reference::parse(&p.reference) {
        return Outcome::Reply(Err(RpcError::new(INVALID_PARAMS, e.to_string())));
    }
    match sup.pull_for_client(&p.reference, p.platform.as_deref(), token) {
        Ok(()) => Outcome::Deferred,
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
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
                format!("invalid config, nothing changed: {}", list.first().cloned().unwrap_or_default()),
            );
            e.data = Some(json!({"errors": list}));
            Err(e)
        }
    }
}

/// `list`'s record plus the spec, what isolation the run was given, and
/// its cgroup.
fn inspect(sup: &Supervisor, name: &str) -> Result<Value, RpcError> {
    let c = sup.container(name).map_err(supervisor_error)?;
    let mut v = to_value(c.info())?;
    if let Value::Object(map) = &mut v {
        map.insert("spec".into(), to_value(&c.spec)?);
        map.insert("spec_hash".into(), Value::String(spec_hash(&c.spec)));
        map.insert("health_detail".into(), to_value(&c.health)?);
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
            format!("container {name} is not running ({:?})", c.state),
        )
    })?;
    let mut v = to_value(cg.stats())?;
    if let Value::Object(map) = &mut v {
        map.insert("name".into(), Value::String(name.to_string()));
    }
    Ok(v)
}

fn container_state(sup: &Supervisor, name: &str) -> Result<Value, RpcError> {
    let c = sup.container(name).map_err(supervisor_error)?;
    to_value(c.info())
}

/// Params may be omitted when a method takes none; otherwise they must be
/// an object with exactly the documented fields.
fn parse_params<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    let params = if params.is_null() { json!({}) } else { params };
    serde_json::from_value(params)
        .map_err(|e| RpcError::new(INVALID_PARAMS, format!("invalid params: {e}")))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

fn supervisor_error(e: SupervisorError) -> RpcError {
    let code = match e {
        SupervisorError::NoSuchContainer(_) => NO_SUCH_CONTAINER,
        SupervisorError::Container { .. } => CONTAINER_ERROR,
        SupervisorError::ShuttingDown => SHUTTING_DOWN,
        SupervisorError::Invalid(_) => INVALID_PARAMS,
    };
    RpcError::new(code, e.to_string())
}
