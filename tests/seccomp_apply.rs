//! kernel::seccomp on the real kernel: a process that installs berth's
//! compiled Docker default filters (for the host) gets Docker's answers
//! from the kernel. The filtered part runs in a fresh process (this test
//! binary re-run for this one test), since filters cannot be removed.
//! Needs no root: no_new_privs is enough to install a filter.

use std::process::Command;

use berth::kernel::caps::DOCKER_DEFAULT;
use berth::kernel::seccomp::{
    CompileContext, apply, compile, docker_default, host_arch, host_kernel_version,
};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

const CHILD_ENV: &str = "BERTH_SECCOMP_APPLY_CHILD";
const TEST_NAME: &str = "the_kernel_enforces_the_compiled_default_profile";

/// "ok" or the errno name of a raw syscall with integer arguments.
fn raw_syscall(nr: libc::c_long, args: [libc::c_long; 4]) -> String {
    // SAFETY: every call below passes integers or null pointers only; the
    // kernel validates them, so the worst case is an error return.
    let rc = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3]) };
    if rc < 0 {
        format!("{:?}", Errno::last())
    } else {
        "ok".to_string()
    }
}

fn result<T>(r: nix::Result<T>) -> String {
    r.map_or_else(|e| format!("{e:?}"), |_| "ok".to_string())
}

fn filtered_child() {
    let ctx = CompileContext {
        arch: host_arch(),
        capabilities: &DOCKER_DEFAULT,
        kernel: host_kernel_version(),
    };
    let filters = compile(&docker_default(), &ctx).expect("compile");
    nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
    apply(&filters).expect("apply");
    println!("applied");
    println!("getppid={}", nix::unistd::getppid().as_raw() > 0);
    // KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3).
    println!("keyctl={}", raw_syscall(libc::SYS_keyctl, [0, -3, 0, 0]));
    // A null clone_args of size 0: EINVAL if it ever reached the kernel.
    println!("clone3={}", raw_syscall(libc::SYS_clone3, [0, 0, 0, 0]));
    let unshare = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER);
    println!("unshare-user={}", result(unshare));
    println!("nr1000={}", raw_syscall(1000, [0; 4]));
    // Newer than the profile (Linux 6.15), so real on this kernel: only
    // the ENOSYS filter makes it ENOSYS rather than EPERM or EBADF.
    let open_tree_attr = syscalls::Sysno::open_tree_attr.id();
    println!(
        "open_tree_attr={}",
        raw_syscall(open_tree_attr.into(), [-1, 0, 0, 0])
    );
    for (label, family) in [
        ("vsock", AddressFamily::Vsock),
        ("alg", AddressFamily::Alg),
        ("inet", AddressFamily::Inet),
    ] {
        let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None);
        println!("socket-{label}={}", result(fd));
    }
    // The kernel reads the family as an int: garbage in the upper half
    // must not slip AF_VSOCK (40) and AF_ALG (38) past the filter.
    let high = 1i64 << 32;
    println!(
        "socket-vsock-high={}",
        raw_syscall(
            libc::SYS_socket,
            [high + 40, libc::SOCK_STREAM.into(), 0, 0]
        )
    );
    println!(
        "socket-alg-high={}",
        raw_syscall(
            libc::SYS_socket,
            [high + 38, libc::SOCK_SEQPACKET.into(), 0, 0]
        )
    );
    let status = Command::new("/bin/true").status();
    println!("exec-true={}", status.is_ok_and(|s| s.success()));
}

#[test]
fn the_kernel_enforces_the_compiled_default_profile() {
    if std::env::var_os(CHILD_ENV).is_some() {
        filtered_child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "applied",
        "getppid=true",
        "keyctl=EPERM",
        "clone3=ENOSYS",
        "unshare-user=EPERM",
        "nr1000=ENOSYS",
        "open_tree_attr=ENOSYS",
        "socket-vsock=EPERM",
        "socket-alg=EPERM",
        "socket-vsock-high=EPERM",
        "socket-alg-high=EPERM",
        "socket-inet=ok",
        "exec-true=true",
    ] {
        assert!(
            stdout.contains(&format!("{expected}\n")),
            "expected {expected} in:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
