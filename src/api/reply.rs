//! Turning what the supervisor returns into JSON-RPC results: values
//! serialized, supervisor errors mapped to the API's error codes. Shared
//! by methods.rs and admin_methods.rs; no method lives here.

use serde_json::Value;

use super::protocol::{
    CONTAINER_ERROR, INTERNAL_ERROR, INVALID_PARAMS, NO_SUCH_CONTAINER, RpcError, SHUTTING_DOWN,
};
use crate::supervisor::SupervisorError;

pub(super) fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

pub(super) fn supervisor_error(e: SupervisorError) -> RpcError {
    let code = match e {
        SupervisorError::NoSuchContainer(_) => NO_SUCH_CONTAINER,
        SupervisorError::Container { .. } => CONTAINER_ERROR,
        SupervisorError::ShuttingDown => SHUTTING_DOWN,
        SupervisorError::Invalid(_) => INVALID_PARAMS,
    };
    RpcError::new(code, e.to_string())
}
