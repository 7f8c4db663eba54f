//! A container's health as the checks left it, and what its checks run
//! as. Running the checks is ops/health.rs.

use std::os::fd::OwnedFd;

use nix::unistd::Pid;
use serde::Serialize;

use crate::kernel::config::{ProcessConfig, SecurityConfig};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No health check in the spec.
    #[default]
    None,
    /// Running, no verdict yet (or within the start period).
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Default, Serialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub last_exit_code: Option<i32>,
    pub last_output: String,
    pub last_check_at: Option<String>,
    #[serde(skip)]
    pub running: Option<CheckRun>,
}

#[derive(Debug)]
pub struct CheckRun {
    pub pid: Pid,
    pub output: OwnedFd,
    pub timed_out: bool,
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }
}

/// What a container's checks run as: its own process settings (cwd, user,
/// env) with the check's argv, and its security settings.
#[derive(Debug, Clone)]
pub struct ExecTemplate {
    pub process: ProcessConfig,
    pub security: SecurityConfig,
    pub userns: bool,
}
