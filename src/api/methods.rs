//! The API's methods: params in, supervisor call, result out. Each method
//! is documented in docs/api.md.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::protocol::{
    CONTAINER_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, NO_SUCH_CONTAINER, RpcError, SHUTTING_DOWN,
};
use crate::supervisor::{Supervisor, SupervisorError};

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
struct NoParams {}

pub fn dispatch(sup: &mut Supervisor, method: &str, params: Value) -> Result<Value, RpcError> {
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
            sup.stop(&p.name).map_err(supervisor_error)?;
            container_state(sup, &p.name)
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
    serde_json::to_value(v)
        .map_err(|e| RpcError::new(super::protocol::INTERNAL_ERROR, e.to_string()))
}

fn supervisor_error(e: SupervisorError) -> RpcError {
    let code = match e {
        SupervisorError::NoSuchContainer(_) => NO_SUCH_CONTAINER,
        SupervisorError::Container { .. } => CONTAINER_ERROR,
        SupervisorError::ShuttingDown => SHUTTING_DOWN,
    };
    RpcError::new(code, e.to_string())
}
