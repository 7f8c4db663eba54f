//! The ordered sequence the container's first process runs between clone and
//! exec, and nothing else. Every step reports failure on the error pipe as a
//! stage-tagged record; the order of the steps is the point of this file.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::stat::{Mode, umask};
use nix::unistd::{
    Gid, Uid, chdir, dup2_stderr, dup2_stdin, dup2_stdout, execve, read, setgroups, sethostname,
    setresgid, setresuid, setsid, write,
};

use nix::sys::resource::setrlimit;

use super::cgroupns::{self, CgroupView};
use super::config::{ContainerConfig, ProcessConfig, Rlimit, SecurityConfig};
use super::error::SysError;
use super::handshake::{ErrorRecord, GO_BYTE, RECORD_BUF_BYTES, Stage};
use super::overlay::{OverlayPlan, mount_overlay};
use super::rootfs::FsOwner;
use super::start_clock::{Mark, StartClock};
use super::userns::JoinFds;
use super::{
    caps, container_hooks, container_init, devices, landlock, mounts, net, rootfs, seccomp, sys,
    userns,
};

/// Everything the child needs, resolved by the parent before the clone so
/// the child parses nothing.
pub struct ChildPlan<'a> {
    pub cfg: &'a ContainerConfig,
    /// The user namespace holder's descriptors, when there is one.
    pub userns: Option<JoinFds>,
    /// Host ids owning the container's writable kernel filesystems.
    pub fs_owner: Option<FsOwner>,
    pub mount_point: CString,
    pub overlay: OverlayPlan,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Absolute paths to try for argv[0], in PATH order.
    pub exec_candidates: Vec<CString>,
    /// The cgroup filesystems to mount in a private cgroup namespace.
    pub cgroupns: Option<&'static CgroupView>,
    /// Where the child stamps its stages for the parent.
    pub clock: &'a StartClock,
    /// The host's mount namespace, when createContainer hooks need it.
    pub host_mount_ns: Option<Arc<OwnedFd>>,
    /// The sealed init to execute instead of argv[0] (argv is its own).
    pub init: Option<&'a OwnedFd>,
}

pub(super) struct Failure {
    pub stage: Stage,
    pub errno: Errno,
    pub detail: String,
}

trait AtStage<T> {
    fn at(self, stage: Stage) -> Result<T, Failure>;
}

impl<T> AtStage<T> for Result<T, SysError> {
    fn at(self, stage: Stage) -> Result<T, Failure> {
        self.map_err(|e| {
            let detail = match &e.target {
                Some(t) => format!("{} {}", e.op, t.display()),
                None => e.op.to_string(),
            };
            Failure {
                stage,
                errno: e.errno,
                detail,
            }
        })
    }
}

impl<T> AtStage<T> for Result<T, Errno> {
    fn at(self, stage: Stage) -> Result<T, Failure> {
        self.map_err(|errno| Failure {
            stage,
            errno,
            detail: String::new(),
        })
    }
}

/// Runs the child sequence; never returns. On success the process image is
/// replaced by execve; on failure the record goes to `err_pipe` and the
/// child exits 127 (ENOENT) or 126 (anything else), tini's convention.
pub fn run(plan: &ChildPlan<'_>, sync_pipe: OwnedFd, err_pipe: OwnedFd) -> ! {
    let failure = match run_steps(plan, &sync_pipe) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    let mut buf = [0u8; RECORD_BUF_BYTES];
    let n = ErrorRecord::encode(
        failure.stage,
        failure.errno as i32,
        failure.detail.as_bytes(),
        &mut buf,
    );
    let _ = write(err_pipe.as_fd(), &buf[..n]);
    let code = if failure.errno == Errno::ENOENT {
        127
    } else {
        126
    };
    // SAFETY: _exit skips atexit handlers and stdio flushing that belong to
    // the supervisor's copy of the process state.
    unsafe { libc::_exit(code) }
}

fn run_steps(
    plan: &ChildPlan<'_>,
    sync_pipe: &OwnedFd,
) -> Result<std::convert::Infallible, Failure> {
    prepare_process(plan, sync_pipe)?;
    let hooks = &plan.cfg.hooks;
    // While /proc is still the host's and the bundle is reachable.
    let host_pid = if hooks.is_empty() {
        None
    } else {
        let pid = container_hooks::host_pid().at(Stage::CreateContainerHooks)?;
        container_hooks::write_bundle_file(hooks, pid).at(Stage::CreateContainerHooks)?;
        Some(pid)
    };
    build_filesystem(plan, host_pid)?;
    plan.clock.mark(Mark::ChildFilesystem);
    // After the last mount: the mount namespace stays the host's, so
    // nothing the container does with its namespaced privileges mounts.
    if let Some(fds) = &plan.userns {
        userns::join_user_namespace(fds).at(Stage::JoinNamespaces)?;
    }
    // In the container's mount namespace, so the pty is of its own devpts.
    if !plan.cfg.stdio.terminal.is_empty() {
        super::exec_tty::attach_terminal(&plan.cfg.stdio.terminal).map_err(|errno| Failure {
            stage: Stage::Stdio,
            errno,
            detail: "open a terminal in the container's /dev/pts".into(),
        })?;
    }
    set_identity(&plan.cfg.process, &plan.cfg.security)?;
    plan.clock.mark(Mark::ChildIdentity);
    if let Some(pid) = host_pid {
        let stdin = hooks.start_stdin.render(pid);
        container_hooks::run_all("startContainer", &hooks.start, &stdin)
            .map_err(|f| hook_failure(Stage::StartContainerHooks, f))?;
    }
    if let Some(init) = plan.init {
        return Err(Failure {
            stage: Stage::Exec,
            errno: container_init::exec_sealed(init, &plan.argv, &plan.envp),
            detail: "exec berth's init".into(),
        });
    }
    exec_process(&plan.argv, &plan.envp, &plan.exec_candidates)
}

/// Phase 1: tie our life to the supervisor's, wait until it has placed us
/// in our cgroup, and take over the container's stdio.
fn prepare_process(plan: &ChildPlan<'_>, sync_pipe: &OwnedFd) -> Result<(), Failure> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a plain integer argument.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(Errno::last()).at(Stage::WaitForGo);
    }
    let mut go = [0u8; 1];
    match read(sync_pipe.as_fd(), &mut go) {
        Ok(1) if go[0] == GO_BYTE => {}
        // EOF: the supervisor died or gave up on us before saying go.
        Ok(_) => return Err(Errno::ECANCELED).at(Stage::WaitForGo),
        Err(e) => return Err(e).at(Stage::WaitForGo),
    }
    plan.clock.mark(Mark::ChildGo);
    setsid().at(Stage::Setsid)?;
    let stdio = &plan.cfg.stdio;
    dup2_stdin(&stdio.stdin).at(Stage::Stdio)?;
    dup2_stdout(&stdio.stdout).at(Stage::Stdio)?;
    dup2_stderr(&stdio.stderr).at(Stage::Stdio)
}

/// Phase 2: the container's own filesystem view, in its own mount namespace.
fn build_filesystem(plan: &ChildPlan<'_>, host_pid: Option<i32>) -> Result<(), Failure> {
    let cfg = plan.cfg;
    // While the host's tree is still reachable, and before the root turns
    // private, so a "slave" bind still follows its host peer group.
    let binds = mounts::open_bind_sources(&cfg.mounts).at(Stage::BindSources)?;
    // Before /sys is mounted, so it shows the container's own network.
    if let Some(fds) = &plan.userns {
        userns::join_owned_namespaces(fds).at(Stage::JoinNamespaces)?;
    }
    // Before any mount, so none of ours propagates to the host.
    rootfs::make_root_private().at(Stage::MountPrivate)?;
    mount_overlay(&plan.overlay, plan.userns.map(|f| f.user)).at(Stage::MountOverlay)?;
    rootfs::pivot_into(&plan.mount_point).at(Stage::PivotRoot)?;
    // After pivot_root, so the image's symlinks cannot redirect a mount to
    // a host path.
    let writable_sysfs = cfg.writable_sysfs;
    rootfs::mount_kernel_filesystems(cfg.rootfs.shm_size_bytes, plan.fs_owner, writable_sysfs)
        .at(Stage::MountFilesystems)?;
    if let Some(view) = plan.cgroupns {
        cgroupns::enter_private(view, writable_sysfs).at(Stage::CgroupNamespace)?;
    }
    devices::make_default_devices().at(Stage::MakeDevices)?;
    devices::make_device_nodes(&cfg.devices).at(Stage::MakeDevices)?;
    mounts::write_sysctls(&cfg.sysctls).at(Stage::Sysctls)?;
    mounts::mount_all(&cfg.mounts, binds, plan.fs_owner).at(Stage::UserMounts)?;
    // Where runc runs them: every mount made, nothing masked or read-only yet.
    if let Some(pid) = host_pid {
        run_create_hooks(plan, pid)?;
    }
    rootfs::mask_paths(&cfg.masked_paths).at(Stage::MaskPaths)?;
    rootfs::make_paths_readonly(&cfg.readonly_paths).at(Stage::ReadonlyPaths)?;
    // Docker creates a missing WorkingDir; it must exist before the root
    // turns read-only.
    let cwd = &cfg.process.cwd;
    std::fs::create_dir_all(cwd)
        .map_err(|e| SysError::io("mkdir", cwd, &e))
        .at(Stage::Chdir)?;
    if cfg.rootfs.read_only {
        mounts::make_root_readonly().at(Stage::ReadonlyRoot)?;
    }
    sethostname(&cfg.hostname).at(Stage::Hostname)?;
    if cfg.host_network {
        return Ok(());
    }
    net::bring_up_loopback().at(Stage::Loopback)
}

fn run_create_hooks(plan: &ChildPlan<'_>, pid: i32) -> Result<(), Failure> {
    let hooks = &plan.cfg.hooks;
    let Some(ns) = &plan.host_mount_ns else {
        return Ok(());
    };
    let in_host_ns: Vec<_> = hooks
        .create
        .iter()
        .map(|h| container_hooks::ChildHook {
            program: h.program.clone().mount_namespace(ns.clone()),
            timeout: h.timeout,
        })
        .collect();
    let stdin = hooks.create_stdin.render(pid);
    container_hooks::run_all("createContainer", &in_host_ns, &stdin)
        .map_err(|f| hook_failure(Stage::CreateContainerHooks, f))
}

fn hook_failure(stage: Stage, f: container_hooks::HookFailure) -> Failure {
    Failure {
        stage,
        errno: f.errno,
        detail: f.detail,
    }
}

/// Phase 3: who the process is and what it may do. The order matters:
/// the bounding set needs CAP_SETPCAP and raised rlimits need
/// CAP_SYS_RESOURCE, so both come before the uid changes; Landlock and
/// seccomp come last, after the last privileged call (or, without
/// no_new_privs, while CAP_SYS_ADMIN still allows installing them).
pub(super) fn set_identity(p: &ProcessConfig, security: &SecurityConfig) -> Result<(), Failure> {
    // chdir before dropping the uid, which may not be able to reach it
    // (youki and crun do the same).
    chdir(&p.cwd)
        .map_err(|e| SysError::at("chdir", &p.cwd, e))
        .at(Stage::Chdir)?;
    set_rlimits(&security.rlimits)?;
    if !security.no_new_privs {
        confine(security)?;
    }
    caps::drop_bounding(&security.capabilities).at(Stage::DropCaps)?;
    let groups: Vec<Gid> = p
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).at(Stage::SetIds)?;
    let (uid, gid) = (Uid::from_raw(p.uid), Gid::from_raw(p.gid));
    setresgid(gid, gid, gid).at(Stage::SetIds)?;
    setresuid(uid, uid, uid).at(Stage::SetIds)?;
    caps::set_process_capabilities(&security.capabilities, p.uid).at(Stage::DropCaps)?;
    umask(Mode::from_bits_truncate(0o022));
    // The error pipe is already close-on-exec; everything else we inherited
    // from the supervisor must not reach the container.
    sys::cloexec_from(3).at(Stage::CloseFds)?;
    if security.no_new_privs {
        // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Errno::last()).at(Stage::NoNewPrivs);
        }
        confine(security)?;
    }
    Ok(())
}

fn set_rlimits(rlimits: &[Rlimit]) -> Result<(), Failure> {
    for r in rlimits {
        setrlimit(r.resource, r.soft, r.hard).map_err(|e| Failure {
            stage: Stage::Rlimits,
            errno: e,
            detail: format!("set {:?} to {}:{}", r.resource, r.soft, r.hard),
        })?;
    }
    Ok(())
}

/// Landlock, then seccomp: the filter goes last because it may refuse
/// the very calls Landlock needs.
fn confine(security: &SecurityConfig) -> Result<(), Failure> {
    if let Some(ll) = &security.landlock {
        landlock::restrict_self(ll).at(Stage::Landlock)?;
    }
    match &security.seccomp {
        Some(filters) => seccomp::apply(filters).at(Stage::Seccomp),
        None => Ok(()),
    }
}

/// Phase 4: exec, trying each PATH candidate like execvp does. ENOENT and
/// friends move on to the next candidate; EACCES is remembered (execvp's
/// rule) so "permission denied" wins over "not found".
pub(super) fn exec_process(
    argv: &[CString],
    envp: &[CString],
    exec_candidates: &[CString],
) -> Result<std::convert::Infallible, Failure> {
    let mut first_error = Errno::ENOENT;
    let mut saw_eacces = false;
    for candidate in exec_candidates {
        match execve(candidate, argv, envp) {
            Ok(never) => match never {},
            Err(Errno::EACCES) => saw_eacces = true,
            Err(
                Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT,
            ) => {}
            Err(e) => {
                first_error = e;
                break;
            }
        }
    }
    let errno = if saw_eacces && first_error == Errno::ENOENT {
        Errno::EACCES
    } else {
        first_error
    };
    let program = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    Err(Failure {
        stage: Stage::Exec,
        errno,
        detail: format!("exec {program}"),
    })
}
