//! Every method's params: their types, and the one place they are parsed
//! and bounded (docs/api.md lists the ranges). A param out of range is an
//! invalid-params error naming it, before any method runs.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::protocol::{INVALID_PARAMS, METHOD_NOT_FOUND, RpcError};
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::bounds::{
    Bound, BoundValue, EVENT_SEQ, EVENTS_LIMIT, LIST_ENTRIES, LOG_TAIL_ENTRIES, NAME_BYTES,
    TEXT_BYTES,
};
use crate::supervisor::spec::validate::{check_spec, dotted_path};

pub use super::admin_params::{
    ApplyParams, KillParams, PullParams, RmiParams, ShutdownParams, UpdateParams,
};

/// The methods with no params (`params` omitted, null or `{}`).
const NO_PARAMS: &[&str] = &[
    "version", "list", "info", "check", "images", "prune", "reload", "writes",
];
/// The methods whose only param is a container's `name`.
const NAME_ONLY: &[&str] = &["start", "stop", "restart", "inspect", "stats"];
/// Every method the daemon answers.
pub const METHODS: &[&str] = &[
    "version", "list", "info", "check", "images", "prune", "reload", "start", "stop", "restart",
    "inspect", "stats", "logs", "events", "run", "wait", "pull", "kill", "rmi", "shutdown",
    "update", "writes", "apply", "exec",
];

/// A request's params, parsed and bounded.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum MethodParams {
    None,
    Name(NameParams),
    Logs(LogsParams),
    Events(EventsParams),
    Run(Box<RunParams>),
    Wait(WaitParams),
    Pull(PullParams),
    Update(UpdateParams),
    Apply(ApplyParams),
    Kill(KillParams),
    Rmi(RmiParams),
    Shutdown(ShutdownParams),
    Exec(Box<ExecParams>),
}

impl MethodParams {
    /// The params of `method`, or the error to answer with: -32601 for an
    /// unknown method, -32602 naming the param otherwise.
    pub fn parse(method: &str, params: Value) -> Result<MethodParams, RpcError> {
        Ok(match method {
            m if NO_PARAMS.contains(&m) => {
                parse::<NoParams>(params)?;
                MethodParams::None
            }
            m if NAME_ONLY.contains(&m) => MethodParams::Name(parse(params)?),
            "logs" => MethodParams::Logs(parse(params)?),
            "events" => MethodParams::Events(parse(params)?),
            "run" => MethodParams::Run(Box::new(parse(params)?)),
            "wait" => MethodParams::Wait(parse(params)?),
            "pull" => MethodParams::Pull(parse(params)?),
            "update" => MethodParams::Update(parse(params)?),
            "apply" => MethodParams::Apply(parse(params)?),
            "kill" => MethodParams::Kill(parse(params)?),
            "rmi" => MethodParams::Rmi(parse(params)?),
            "shutdown" => MethodParams::Shutdown(parse(params)?),
            "exec" => MethodParams::Exec(Box::new(parse(params)?)),
            other => {
                return Err(RpcError::new(
                    METHOD_NOT_FOUND,
                    format!("unknown method {other:?}"),
                ));
            }
        })
    }
}

/// Params that know their own bounds: (param path, why) for each problem.
pub(super) trait Bounded {
    fn problems(&self) -> Vec<(String, String)>;
}

/// Params may be omitted when a method takes none; otherwise they must be
/// an object with exactly the documented fields, each within its range.
fn parse<T: DeserializeOwned + Bounded>(params: Value) -> Result<T, RpcError> {
    let params = if params.is_null() { json!({}) } else { params };
    let value: T = serde_path_to_error::deserialize(params).map_err(|e| {
        let path = dotted_path(e.path());
        let message = if path.is_empty() {
            format!("invalid params: {}", e.inner())
        } else {
            format!("invalid params: {path}: {}", e.inner())
        };
        RpcError::new(INVALID_PARAMS, message)
    })?;
    match value.problems().into_iter().next() {
        None => Ok(value),
        Some((param, why)) => Err(RpcError::new(
            INVALID_PARAMS,
            format!("invalid params: {param}: {why}"),
        )),
    }
}

pub(super) fn value<T: BoundValue>(
    out: &mut Vec<(String, String)>,
    param: &str,
    b: &Bound<T>,
    v: T,
) {
    if let Err(why) = b.check(v) {
        out.push((param.to_string(), why));
    }
}

pub(super) fn text(
    out: &mut Vec<(String, String)>,
    param: &str,
    b: &Bound<usize>,
    v: Option<&str>,
) {
    if let Err(why) = b.check(v.map_or(0, str::len)) {
        out.push((param.to_string(), format!("too long: {why}")));
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl Bounded for NoParams {
    fn problems(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameParams {
    pub name: String,
}

impl Bounded for NameParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "name", &NAME_BYTES, Some(&self.name));
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    pub name: String,
    #[serde(default)]
    pub tail: Option<usize>,
    /// Unix seconds (number or string), RFC 3339, or a duration ago.
    #[serde(default)]
    pub since: Option<Value>,
    #[serde(default)]
    pub follow: bool,
}

impl Bounded for LogsParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "name", &NAME_BYTES, Some(&self.name));
        if let Some(tail) = self.tail {
            value(&mut out, "tail", &LOG_TAIL_ENTRIES, tail);
        }
        match &self.since {
            None | Some(Value::Number(_)) => {}
            Some(Value::String(s)) => text(&mut out, "since", &TEXT_BYTES, Some(s)),
            Some(_) => out.push(("since".into(), "expected a number or a string".into())),
        }
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Events with a seq above this; without it, `follow` starts from now
    /// and a one-off read from the oldest kept.
    #[serde(default)]
    pub since: Option<u64>,
    #[serde(default)]
    pub follow: bool,
    /// Globs on the kind, e.g. ["container.*"].
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub container: Option<String>,
    /// At most this many events in a one-off read (default 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

impl Bounded for EventsParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(since) = self.since {
            value(&mut out, "since", &EVENT_SEQ, since);
        }
        if let Some(limit) = self.limit {
            value(&mut out, "limit", &EVENTS_LIMIT, limit);
        }
        if let Err(why) = LIST_ENTRIES.check(self.kinds.len()) {
            out.push(("kinds".into(), format!("too many entries: {why}")));
        } else if let Some(i) = self.kinds.iter().position(|k| k.len() > TEXT_BYTES.max) {
            text(
                &mut out,
                &format!("kinds.{i}"),
                &TEXT_BYTES,
                Some(&self.kinds[i]),
            );
        }
        text(
            &mut out,
            "container",
            &NAME_BYTES,
            self.container.as_deref(),
        );
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub rm: bool,
    #[serde(default)]
    pub wait: bool,
    /// A pty of the container's own for its first process (`run -t`).
    #[serde(default)]
    pub tty: bool,
    /// The client writes the first process's stdin (`run -i`).
    #[serde(default)]
    pub stdin: bool,
    pub spec: Spec,
}

impl Bounded for RunParams {
    /// The spec is checked in full, as a spec file would be: its bounds
    /// and its meaning (`spec.command: must name a program to run`).
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "name", &NAME_BYTES, self.name.as_deref());
        out.extend(
            check_spec(&self.spec)
                .into_iter()
                .map(|(path, why)| (format!("spec.{}", path.join(".")), why)),
        );
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    pub name: String,
    #[serde(default)]
    pub logs: bool,
}

impl Bounded for WaitParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "name", &NAME_BYTES, Some(&self.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(method: &str, params: Value) -> String {
        MethodParams::parse(method, params).unwrap_err().message
    }

    #[test]
    fn every_method_has_params_and_unknown_ones_are_refused() {
        for m in METHODS {
            let known = MethodParams::parse(m, json!({}));
            assert!(
                known.is_ok() || known.unwrap_err().code == INVALID_PARAMS,
                "{m}"
            );
        }
        for m in crate::api::access::READ_ONLY_METHODS {
            assert!(METHODS.contains(m), "{m}");
        }
        let e = MethodParams::parse("nope", Value::Null).unwrap_err();
        assert_eq!(e.code, METHOD_NOT_FOUND);
    }

    #[test]
    fn apply_takes_an_absolute_path_or_reset() {
        assert!(MethodParams::parse("apply", json!({"path": "/etc/cfg"})).is_ok());
        assert!(MethodParams::parse("apply", json!({"reset": true})).is_ok());
        let e = error("apply", json!({"path": "cfg"}));
        assert!(e.contains("path: must be absolute"), "{e}");
        let e = error("apply", json!({"path": "/c", "reset": true}));
        assert!(e.contains("reset: give a path or reset"), "{e}");
        let e = error("apply", json!({"path": format!("/{}", "x".repeat(4096))}));
        assert!(e.contains("path: too long"), "{e}");
        assert!(error("apply", json!({})).contains("path: missing"));
    }

    #[test]
    fn out_of_range_params_are_named() {
        let e = error("events", json!({"since": u64::MAX}));
        assert!(e.starts_with("invalid params: since: expected 0 to"), "{e}");
        let e = error("events", json!({"limit": 0}));
        assert!(
            e.starts_with("invalid params: limit: expected 1 to 10000"),
            "{e}"
        );
        let e = error("logs", json!({"name": "x", "tail": -1}));
        assert!(e.starts_with("invalid params: tail: invalid value"), "{e}");
        let e = error("logs", json!({"name": "x", "tail": 1e300}));
        assert!(e.starts_with("invalid params: tail: invalid type"), "{e}");
        let e = error("start", json!({"name": "x".repeat(256)}));
        assert!(e.starts_with("invalid params: name: too long"), "{e}");
        let e = error(
            "run",
            json!({"spec": {"image": "x", "stop_timeout": u64::MAX}}),
        );
        assert!(
            e.starts_with("invalid params: spec.stop_timeout: expected 0 to 86400"),
            "{e}"
        );
        let e = error("run", json!({"spec": {"image": "x", "stop_timeout": "10"}}));
        assert!(
            e.starts_with("invalid params: spec.stop_timeout: invalid type"),
            "{e}"
        );
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    pub name: String,
    pub command: Vec<String>,
    /// `KEY=VALUE` strings over the container's environment.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    /// Pass a stdin pipe too (`berth exec -i`).
    #[serde(default)]
    pub stdin: bool,
    /// A pty of the container's for all three streams (`-t`).
    #[serde(default)]
    pub tty: bool,
}

impl Bounded for ExecParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "name", &NAME_BYTES, Some(&self.name));
        text(&mut out, "user", &NAME_BYTES, self.user.as_deref());
        text(&mut out, "workdir", &TEXT_BYTES, self.workdir.as_deref());
        for (param, list) in [("command", &self.command), ("env", &self.env)] {
            value(&mut out, param, &LIST_ENTRIES, list.len());
            for (i, item) in list.iter().enumerate() {
                text(&mut out, &format!("{param}.{i}"), &TEXT_BYTES, Some(item));
            }
        }
        out
    }
}
