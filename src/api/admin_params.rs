//! The params of the admin methods that change the machine's images and
//! configuration (update, apply, pull, kill, rmi, shutdown), bounded as
//! params.rs bounds the rest; parsed through params.rs's `MethodParams`.

use serde::{Deserialize, Serialize};

use super::params::{Bounded, text};
use crate::supervisor::daemon::pid1::ShutdownAction;
use crate::supervisor::spec::bounds::{
    NAME_BYTES, PATH_BYTES, PULL_MAX_PARALLEL, PULL_MAX_RATE, TEXT_BYTES,
};

/// `update`: one container (`name`) or every one that follows a tag
/// (`all`); `check` only reports.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateParams {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub check: bool,
}

impl Bounded for UpdateParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "name", &NAME_BYTES, self.name.as_deref());
        match (&self.name, self.all) {
            (Some(_), true) => {
                out.push(("all".into(), "give a name or all: true, not both".into()))
            }
            (None, false) => out.push(("name".into(), "missing: give a name or all: true".into())),
            _ => {}
        }
        out
    }
}

/// `apply`: a config directory or tarball (`path`, absolute, read by the
/// daemon), or `reset: true` back to the seed config.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyParams {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub reset: bool,
}

impl Bounded for ApplyParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "path", &PATH_BYTES, self.path.as_deref());
        match (&self.path, self.reset) {
            (Some(_), true) => out.push((
                "reset".into(),
                "give a path or reset: true, not both".into(),
            )),
            (None, false) => {
                out.push(("path".into(), "missing: give a path or reset: true".into()))
            }
            (Some(p), false) if !p.starts_with('/') => {
                out.push(("path".into(), "must be absolute".into()))
            }
            _ => {}
        }
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullParams {
    pub reference: String,
    #[serde(default)]
    pub platform: Option<String>,
    /// Bytes per second, all layers together (berth.json `pull.max_rate`).
    #[serde(default)]
    pub max_rate: Option<u64>,
    /// Layers at once (berth.json `pull.max_parallel`).
    #[serde(default)]
    pub max_parallel: Option<u64>,
}

impl Bounded for PullParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "reference", &TEXT_BYTES, Some(&self.reference));
        text(&mut out, "platform", &TEXT_BYTES, self.platform.as_deref());
        for (field, bound, v) in [
            ("max_rate", &PULL_MAX_RATE, self.max_rate),
            ("max_parallel", &PULL_MAX_PARALLEL, self.max_parallel),
        ] {
            if let Some(Err(e)) = v.map(|v| bound.check(v)) {
                out.push((field.to_string(), e));
            }
        }
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillParams {
    pub name: String,
    /// Default SIGKILL, as docker kill.
    #[serde(default)]
    pub signal: Option<String>,
}

impl Bounded for KillParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "name", &NAME_BYTES, Some(&self.name));
        text(&mut out, "signal", &NAME_BYTES, self.signal.as_deref());
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmiParams {
    pub reference: String,
    #[serde(default)]
    pub force: bool,
}

impl Bounded for RmiParams {
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        text(&mut out, "reference", &TEXT_BYTES, Some(&self.reference));
        out
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownParams {
    #[serde(default)]
    pub action: Option<ShutdownAction>,
}

impl Bounded for ShutdownParams {
    fn problems(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}
