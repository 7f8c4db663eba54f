//! What the CDI devices a container is given add up to, in berth's terms:
//! device nodes, environment, bind mounts, OCI hooks by berth's stages,
//! supplementary groups. Built from the spec files' `containerEdits`
//! (the file's once, then each device's, the reference order).

use serde::{Deserialize, Serialize};

use crate::supervisor::plugins::cdi::model::{CdiHook, CdiMount, ContainerEdits};
use crate::supervisor::plugins::cdi::nodes::{CdiNode, cdi_node};
use crate::supervisor::spec::service::{HookSpec, HooksSpec};

/// Everything the CDI devices of one container ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdiEdits {
    /// `KEY=VALUE`; a later entry for a key wins, and these win over the
    /// image's and the container spec's (as Podman and containerd apply
    /// CDI edits last).
    pub env: Vec<String>,
    pub nodes: Vec<CdiNode>,
    pub mounts: Vec<CdiBind>,
    pub hooks: HooksSpec,
    pub additional_gids: Vec<u32>,
}

/// A CDI mount, always a recursive bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdiBind {
    pub source: String,
    pub target: String,
    pub flags: BindFlags,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindFlags {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    /// Host mounts below it propagate in (`slave`/`rslave`).
    pub slave: bool,
}

/// Where a CDI hook runs in berth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStage {
    Prestart,
    Poststart,
    Poststop,
    CreateContainer,
    StartContainer,
}

/// The OCI hook names a spec may use.
pub fn hook_stage(name: &str) -> Result<HookStage, String> {
    Ok(match name {
        "prestart" | "createRuntime" => HookStage::Prestart,
        "poststart" => HookStage::Poststart,
        "poststop" => HookStage::Poststop,
        "createContainer" => HookStage::CreateContainer,
        "startContainer" => HookStage::StartContainer,
        other => {
            return Err(format!(
                "{other:?} is not one of prestart, createRuntime, createContainer, startContainer, poststart, poststop"
            ));
        }
    })
}

/// A bind's flags from a CDI mount's type and options. Host data stays
/// data unless the spec says otherwise: nosuid and nodev unless `suid` or
/// `dev` is listed (berth's rule for every bind). Only bind mounts.
pub fn mount_flags(kind: Option<&str>, options: &[String]) -> Result<BindFlags, String> {
    if !matches!(kind, None | Some("" | "bind" | "rbind")) {
        return Err(format!(
            "type {:?}: only bind mounts are supported",
            kind.unwrap_or_default()
        ));
    }
    let mut f = BindFlags {
        nosuid: true,
        nodev: true,
        ..BindFlags::default()
    };
    for o in options {
        match o.as_str() {
            "bind" | "rbind" | "private" | "rprivate" => {}
            "ro" => f.read_only = true,
            "rw" => f.read_only = false,
            "nosuid" => f.nosuid = true,
            "suid" => f.nosuid = false,
            "nodev" => f.nodev = true,
            "dev" => f.nodev = false,
            "noexec" => f.noexec = true,
            "exec" => f.noexec = false,
            "slave" | "rslave" => f.slave = true,
            other => return Err(format!("option {other:?} is not supported")),
        }
    }
    Ok(f)
}

impl CdiEdits {
    /// Adds one `containerEdits`; `what` names it in errors (the device).
    pub fn append(&mut self, e: &ContainerEdits, what: &str) -> Result<(), String> {
        if e.intel_rdt.is_some() {
            return Err(format!("{what}: intelRdt is not supported by berth"));
        }
        if e.net_devices.is_some() {
            return Err(format!("{what}: netDevices is not supported by berth"));
        }
        self.env.extend(e.env().iter().cloned());
        self.nodes.extend(e.device_nodes().iter().map(cdi_node));
        for m in e.mounts() {
            self.mounts
                .push(bind(m).map_err(|e| format!("{what}: {e}"))?);
        }
        for h in e.hooks() {
            self.add_hook(h).map_err(|e| format!("{what}: {e}"))?;
        }
        for g in e.additional_gids() {
            if !self.additional_gids.contains(g) {
                self.additional_gids.push(*g);
            }
        }
        Ok(())
    }

    fn add_hook(&mut self, h: &CdiHook) -> Result<(), String> {
        let hook = HookSpec {
            path: h.path.clone(),
            args: h.args.clone().unwrap_or_default(),
            env: h.env.clone().unwrap_or_default(),
            timeout: h.timeout.and_then(|t| u64::try_from(t).ok()),
        };
        match hook_stage(&h.hook_name)? {
            HookStage::Prestart => self.hooks.prestart.push(hook),
            HookStage::Poststart => self.hooks.poststart.push(hook),
            HookStage::Poststop => self.hooks.poststop.push(hook),
            HookStage::CreateContainer => self.hooks.create_container.push(hook),
            HookStage::StartContainer => self.hooks.start_container.push(hook),
        }
        Ok(())
    }
}

fn bind(m: &CdiMount) -> Result<CdiBind, String> {
    let options = m.options.as_deref().unwrap_or_default();
    Ok(CdiBind {
        source: m.host_path.clone(),
        target: m.container_path.clone(),
        flags: mount_flags(m.kind.as_deref(), options)
            .map_err(|e| format!("mount {}: {e}", m.container_path))?,
    })
}
