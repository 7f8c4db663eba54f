//! The terminal of an exec (`berth exec -t`) or of a container's first
//! process (`berth run -t`): a pty from the container's own devpts, opened
//! by a process already in the container's mount namespace, its master
//! sent to the client over a socket (SCM_RIGHTS), its slave the command's
//! controlling terminal. No host terminal ever reaches the container, so it
//! cannot push input into one (TIOCSTI).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;

/// A new pty of the current mount namespace's devpts: (master, slave).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd), Errno> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = open("/dev/pts/ptmx", flags, Mode::empty())?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from memory we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(Errno::last());
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor
    // of this master's slave (no path lookup that could be raced).
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor; nothing owns it.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// Sends `fd` over the stream socket `to`, riding on one byte.
pub fn send_fd(to: &OwnedFd, fd: &OwnedFd) -> Result<(), Errno> {
    let raw = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"T")];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(to.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}

/// Makes the pty slave on stdin this process's controlling terminal, in a
/// session of its own.
pub fn take_terminal() -> Result<(), Errno> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY on descriptor 0 with argument 0 (do not steal).
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The container's first process (`run -t`): a pty of its devpts whose
/// master goes to each of `channels` (the client's, and the daemon's that
/// keeps it open while no client is attached) and whose slave becomes its
/// stdio and controlling terminal. It is already a session leader.
pub fn attach_terminal(channels: &[OwnedFd]) -> Result<(), Errno> {
    let (master, slave) = open_pty()?;
    for c in channels {
        send_fd(c, &master)?;
    }
    drop(master);
    nix::unistd::dup2_stdin(&slave)?;
    nix::unistd::dup2_stdout(&slave)?;
    nix::unistd::dup2_stderr(&slave)?;
    // SAFETY: TIOCSCTTY on descriptor 0 with argument 0 (do not steal).
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}
