//! A container's `secrets` at start: each source is opened in the config
//! directory's secrets/ and judged as ssh judges a private key (a regular
//! file, root's, no access for group or others, in a directory only root
//! may change), then handed to the kernel layer as a tmpfs at
//! /run/secrets filled with copies. Only descriptors pass through the
//! daemon: the bytes are read by the container's first process while it
//! builds its filesystem, so a secret's content is never in the daemon's
//! memory, log, events or errors. Opening and fstat are all the loop does.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};
use nix::unistd::{SysconfVar, sysconf};

use crate::kernel::config::{FileCopy, MountConfig};
use crate::kernel::error::errno_text;
use crate::kernel::userns::UsernsConfig;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::bounds::SECRET_FILE_BYTES;
use crate::supervisor::spec::secrets::{SECRETS_DIR, SOURCE_DIR, SecretSpec};

/// /run/secrets itself: root's, listable by everyone (Docker's).
const SECRETS_DIR_MODE: u32 = 0o755;

/// The filled tmpfs for the spec's secrets, or `None` without any. Errors
/// name the secret, its file and what is wrong with it; never its content.
pub fn secrets_mount(
    spec: &Spec,
    config_dir: &Path,
    userns: Option<&UsernsConfig>,
) -> Result<Option<MountConfig>, String> {
    if spec.secrets.is_empty() {
        return Ok(None);
    }
    let dir_path = config_dir.join(SOURCE_DIR);
    let dir = open_source_dir(&dir_path)?;
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    // Never 0, which would make the tmpfs unlimited.
    let mut size_bytes = page;
    let mut files = Vec::new();
    for s in &spec.secrets {
        let path = dir_path.join(&s.source);
        let named = |why: String| format!("secret {:?}: {}: {why}", s.source, path.display());
        let (fd, len) = open_secret(&dir, &s.source).map_err(named)?;
        size_bytes = size_bytes.saturating_add(len.div_ceil(page).saturating_mul(page));
        let (uid, gid) = host_ids(s, userns)?;
        files.push(FileCopy {
            name: s.target.clone(),
            source: Arc::new(fd),
            uid,
            gid,
            mode: s.mode_bits(),
        });
    }
    Ok(Some(MountConfig::Files {
        target: SECRETS_DIR.into(),
        size_bytes,
        mode: SECRETS_DIR_MODE,
        files,
    }))
}

/// secrets/ itself: a directory only root may add to or replace files in.
fn open_source_dir(path: &Path) -> Result<OwnedFd, String> {
    let fail = |why: String| format!("secrets directory {}: {why}", path.display());
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = open(path, flags, Mode::empty()).map_err(|e| fail(errno_text(e)))?;
    let st = fstat(&dir).map_err(|e| fail(errno_text(e)))?;
    if st.st_uid != 0 {
        return Err(fail(format!(
            "owned by uid {}; it must be root's",
            st.st_uid
        )));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(fail(format!(
            "mode {:04o} lets group or others replace secrets; chmod go-w it",
            st.st_mode & 0o7777
        )));
    }
    Ok(dir)
}

/// Opens one source and says why it will not do. Its type is checked
/// before the open (so a FIFO or device is never opened) and everything
/// again on the open descriptor (so a file swapped in between is judged).
fn open_secret(dir: &OwnedFd, name: &str) -> Result<(OwnedFd, u64), String> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(missing)?;
    check_source(&st)?;
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = openat(dir, name, flags, Mode::empty()).map_err(missing)?;
    let st = fstat(&fd).map_err(errno_text)?;
    check_source(&st)?;
    Ok((fd, u64::try_from(st.st_size).unwrap_or(0)))
}

fn missing(e: Errno) -> String {
    match e {
        Errno::ENOENT => "no such file (create it root's, mode 0400 or 0600)".into(),
        Errno::ELOOP => "is a symbolic link, not a regular file".into(),
        e => errno_text(e),
    }
}

/// A regular file, root's, no access for group or others, within size.
fn check_source(st: &FileStat) -> Result<(), String> {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFLNK => Some("a symbolic link"),
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFSOCK => Some("a socket"),
        _ => Some("a device"),
    };
    if let Some(kind) = kind {
        return Err(format!("is {kind}, not a regular file"));
    }
    if st.st_uid != 0 {
        return Err(format!("owned by uid {}; it must be root's", st.st_uid));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(format!(
            "mode {:04o} is too open: group and others must have no access (chmod 600 or 400)",
            st.st_mode & 0o7777
        ));
    }
    let len = u64::try_from(st.st_size).unwrap_or(u64::MAX);
    SECRET_FILE_BYTES
        .check(len)
        .map_err(|why| format!("too large: {why}"))
}

/// The secret's owner as the host sees it: through the user namespace's
/// maps when there is one ("auto" maps are only known now).
fn host_ids(s: &SecretSpec, userns: Option<&UsernsConfig>) -> Result<(u32, u32), String> {
    let Some(u) = userns else {
        return Ok((s.uid, s.gid));
    };
    let unmapped = |what: &str, id: u32| {
        format!(
            "secret {:?}: {what} {id} is not mapped by the container's user namespace",
            s.source
        )
    };
    let uid = u.host_uid(s.uid).ok_or_else(|| unmapped("uid", s.uid))?;
    let gid = u.host_gid(s.gid).ok_or_else(|| unmapped("gid", s.gid))?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn spec(secrets: &str) -> Spec {
        serde_json::from_str(&format!(r#"{{"image": "x", "secrets": {secrets}}}"#)).unwrap()
    }

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Needs root (the files must be root's); skipped otherwise.
    #[test]
    fn sources_are_judged_like_private_keys() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let config = tempfile::tempdir().unwrap();
        let dir = config.path().join("secrets");
        fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        fs::write(dir.join("good"), "hunter2").unwrap();
        chmod(&dir.join("good"), 0o400);
        fs::write(dir.join("loose"), "hunter2").unwrap();
        chmod(&dir.join("loose"), 0o644);
        std::os::unix::fs::symlink(dir.join("good"), dir.join("link")).unwrap();
        let err = |s: &str| secrets_mount(&spec(s), config.path(), None).unwrap_err();
        let Some(MountConfig::Files {
            files, size_bytes, ..
        }) = secrets_mount(&spec(r#"["good"]"#), config.path(), None).unwrap()
        else {
            panic!("no mount");
        };
        assert_eq!(
            (files[0].name.as_str(), files[0].mode, size_bytes > 0),
            ("good", 0o444, true)
        );
        assert!(err(r#"["loose"]"#).contains("mode 0644 is too open"));
        assert!(err(r#"["link"]"#).contains("is a symbolic link"));
        assert!(err(r#"["gone"]"#).contains("secrets/gone: no such file"));
        for e in [err(r#"["loose"]"#), err(r#"["gone"]"#)] {
            assert!(!e.contains("hunter2"), "{e}");
        }
        chmod(&dir, 0o777);
        assert!(err(r#"["good"]"#).contains("lets group or others replace secrets"));
    }
}
