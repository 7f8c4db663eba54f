/*
 * probe: tries, one by one, the things a container must not be able to do,
 * and says for each whether the defence held.
 *
 *   cc -static -O2 -o probe probe.c
 *   probe [--hold-ms N] NAME...     (or `probe all`)
 *
 * For each attempt it prints exactly one line, "NAME ok <why>" when the
 * attempt was refused (or had no effect), "NAME ESCAPED <detail>" when it
 * was not, and exits 0 if nothing escaped, 1 otherwise (2 on bad usage).
 *
 * Rules every attempt follows:
 * - "ok" only for a refusal with a security reason: EPERM or EACCES
 *   (capabilities, seccomp's default action, Landlock, the devices cgroup),
 *   EROFS (read-only mounts), ENOSYS (seccomp's answer for calls it does not
 *   know, or a kernel built without the feature). Any other errno counts as
 *   ESCAPED, because it means the call got past the privilege check (the
 *   arguments are chosen so that the first check the kernel makes is the
 *   privilege check, cited per attempt), or that the probe is wrong; either
 *   way a human should look.
 * - Harmless if the defence fails: every attempt is chosen so that a
 *   success changes nothing on the host (reboot only turns Ctrl-Alt-Del
 *   off, kexec_load and init_module get arguments the kernel rejects after
 *   the privilege check, swapon names a missing file, settimeofday passes
 *   no time, opened /proc and /sys files are closed unwritten).
 * - Each attempt runs in a forked child, so a success (a new user or mount
 *   namespace, a keyring) cannot change what later attempts see. A child
 *   killed by SIGSYS (a seccomp KILL action) counts as refused.
 * - fork_bomb and memory_hog are resource attacks: they run in the probe
 *   process itself (memory_hog must be what the OOM killer picks), and are
 *   not part of `all`. raw_socket and chown_foreign are allowed by Docker's
 *   default capabilities, so they are not part of `all` either, nor is
 *   abstract_connect (it needs a listener the test sets up).
 *
 * Raw syscall(2) everywhere, with numbers defined here when the headers are
 * older than the call, so this builds against any glibc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

/* Syscall numbers newer than some headers (x86_64 / aarch64 share the
 * "new" numbers from 424 on). */
#if defined(__x86_64__)
#ifndef SYS_kexec_load
#define SYS_kexec_load 246
#endif
#ifndef SYS_perf_event_open
#define SYS_perf_event_open 298
#endif
#ifndef SYS_open_by_handle_at
#define SYS_open_by_handle_at 304
#endif
#ifndef SYS_name_to_handle_at
#define SYS_name_to_handle_at 303
#endif
#ifndef SYS_setns
#define SYS_setns 308
#endif
#ifndef SYS_bpf
#define SYS_bpf 321
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd 323
#endif
#elif defined(__aarch64__)
#ifndef SYS_kexec_load
#define SYS_kexec_load 104
#endif
#ifndef SYS_perf_event_open
#define SYS_perf_event_open 241
#endif
#ifndef SYS_open_by_handle_at
#define SYS_open_by_handle_at 265
#endif
#ifndef SYS_name_to_handle_at
#define SYS_name_to_handle_at 264
#endif
#ifndef SYS_setns
#define SYS_setns 268
#endif
#ifndef SYS_bpf
#define SYS_bpf 280
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd 282
#endif
#else
#error "probe knows syscall numbers for x86_64 and aarch64 only"
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif

/* Constants from kernel headers that old userspace headers may lack. */
#define PROBE_KEYCTL_GET_KEYRING_ID 0
#define PROBE_KEY_SPEC_PROCESS_KEYRING (-2)
#define PROBE_KEY_SPEC_SESSION_KEYRING (-3)
#define PROBE_BPF_MAP_CREATE 0
#define PROBE_BPF_MAP_TYPE_ARRAY 2
#define PROBE_PERF_TYPE_SOFTWARE 1
#define PROBE_PERF_COUNT_SW_TASK_CLOCK 1
#define PROBE_KEXEC_SEGMENT_MAX 16
#define PROBE_REBOOT_MAGIC1 0xfee1deadU
#define PROBE_REBOOT_MAGIC2 672274793U
#define PROBE_REBOOT_CMD_CAD_OFF 0
#define PROBE_SYSLOG_ACTION_READ_ALL 3
#define PROBE_FSOPEN_CLOEXEC 1
#define PROBE_FILEID_INO32_GEN 1

#define FORK_BOMB_MAX 10000
#define MEMORY_HOG_STEP_BYTES (1L << 20)
/* memory_hog gives up (ESCAPED) here rather than eat the host's memory. */
#define MEMORY_HOG_MAX_MIB 1024

static long hold_ms;

/* ---- reporting ---------------------------------------------------------- */

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case ENFILE: return "ENFILE";
	case EMFILE: return "EMFILE";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case ENOSYS: return "ENOSYS";
	case ENOKEY: return "ENOKEY";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EOVERFLOW: return "EOVERFLOW";
	case ESTALE: return "ESTALE";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	default: {
		static char buf[16];
		snprintf(buf, sizeof buf, "errno%d", e);
		return buf;
	}
	}
}

/* One line, one write(2): no stdio buffer can be duplicated by a fork. */
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(1, line + off, n - off);
		if (w <= 0)
			break;
		off += w;
	}
}

/* An attempt's verdict; `detail` says why. */
struct verdict {
	int escaped;
	int reported; /* the attempt printed its own line already */
	char detail[384];
};

static void refused(struct verdict *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	v->escaped = 0;
	vsnprintf(v->detail, sizeof v->detail, fmt, ap);
	va_end(ap);
}

static void escaped(struct verdict *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	v->escaped = 1;
	vsnprintf(v->detail, sizeof v->detail, fmt, ap);
	va_end(ap);
}

/* Judges a syscall that returned `ret` with errno `err`: refused when the
 * errno is one of the security refusals listed (terminated by 0). */
static void judge(struct verdict *v, const char *what, long ret, int err, ...)
{
	if (ret >= 0) {
		escaped(v, "%s succeeded (returned %ld)", what, ret);
		return;
	}
	va_list ap;
	va_start(ap, err);
	for (int ok = va_arg(ap, int); ok != 0; ok = va_arg(ap, int)) {
		if (ok == err) {
			va_end(ap);
			refused(v, "%s", errno_name(err));
			return;
		}
	}
	va_end(ap);
	escaped(v, "%s failed with %s, which is not a refusal (it got past the privilege check)",
		what, errno_name(err));
}

/* ---- the attempts ------------------------------------------------------- */

/* mount(2) needs CAP_SYS_ADMIN (may_mount); seccomp allows it only with
 * that capability; Landlock refuses mounts outright. On a private
 * directory, and undone at once if it works. */
static void try_mount(struct verdict *v)
{
	const char *target = "/tmp/probe-mnt";
	if (mkdir(target, 0700) != 0 && errno != EEXIST)
		target = "/mnt";
	struct stat st;
	if (stat(target, &st) != 0)
		target = "/";
	long r = mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m");
	int e = errno;
	if (r == 0) {
		umount2(target, MNT_DETACH);
		escaped(v, "mounted a tmpfs on %s", target);
		return;
	}
	judge(v, "mount", r, e, EPERM, EACCES, 0);
}

/* fsopen(2): the new mount API, same CAP_SYS_ADMIN check (fs/fsopen.c). */
static void try_fsopen(struct verdict *v)
{
	long fd = syscall(SYS_fsopen, "tmpfs", PROBE_FSOPEN_CLOEXEC);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	judge(v, "fsopen(tmpfs)", fd, e, EPERM, ENOSYS, 0);
}

/* umount2("/proc", 0): can_umount() checks may_mount() (CAP_SYS_ADMIN)
 * first. Without MNT_DETACH the kernel then refuses with EBUSY when masks
 * are mounted under /proc, so a failed defence usually unmounts nothing;
 * EBUSY means the privilege check was passed. Only the container's own
 * mount namespace could lose /proc, which is why this runs last in `all`. */
static void try_umount(struct verdict *v)
{
	long r = umount2("/proc", 0);
	judge(v, "umount /proc", r, errno, EPERM, 0);
}

/* pivot_root("/", "/"): the syscall checks may_mount() before anything
 * else; with the current root as new_root a privileged caller gets EBUSY
 * and nothing moves. */
static void try_pivot_root(struct verdict *v)
{
	long r = syscall(SYS_pivot_root, "/", "/");
	judge(v, "pivot_root", r, errno, EPERM, 0);
}

/* CLONE_NEWUSER needs no capability from the kernel; only seccomp stops
 * it (Docker's profile allows unshare only with CAP_SYS_ADMIN). */
static void try_unshare_user(struct verdict *v)
{
	long r = unshare(CLONE_NEWUSER);
	judge(v, "unshare(CLONE_NEWUSER)", r, errno, EPERM, 0);
}

/* CLONE_NEWNS needs CAP_SYS_ADMIN. */
static void try_unshare_mnt(struct verdict *v)
{
	long r = unshare(CLONE_NEWNS);
	judge(v, "unshare(CLONE_NEWNS)", r, errno, EPERM, 0);
}

/* setns into our own network namespace: netns_install() wants
 * CAP_SYS_ADMIN even for that, and seccomp allows setns only with it.
 * Joining the namespace we are in changes nothing. */
static void try_setns(struct verdict *v)
{
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == EACCES || e == EPERM)
			refused(v, "open /proc/self/ns/net: %s", errno_name(e));
		else
			escaped(v, "could not open /proc/self/ns/net (%s): setns untested",
				errno_name(e));
		return;
	}
	long r = syscall(SYS_setns, fd, CLONE_NEWNET);
	int e = errno;
	close(fd);
	judge(v, "setns(net)", r, e, EPERM, 0);
}

/* sethostname to the name we already have: CAP_SYS_ADMIN, and seccomp. */
static void try_sethostname(struct verdict *v)
{
	struct utsname u;
	if (uname(&u) != 0) {
		escaped(v, "uname failed (%s): sethostname untested", errno_name(errno));
		return;
	}
	long r = sethostname(u.nodename, strlen(u.nodename));
	judge(v, "sethostname", r, errno, EPERM, 0);
}

/* Keyrings are not namespaced; Docker's profile refuses keyctl, add_key
 * and request_key to everyone. KEYCTL_GET_KEYRING_ID without create only
 * looks a keyring up. */
static void try_keyctl(struct verdict *v)
{
	long r = syscall(SYS_keyctl, PROBE_KEYCTL_GET_KEYRING_ID, PROBE_KEY_SPEC_SESSION_KEYRING, 0);
	judge(v, "keyctl(GET_KEYRING_ID)", r, errno, EPERM, EACCES, ENOSYS, 0);
}

/* A key in the process keyring, which dies with this (forked) process. */
static void try_add_key(struct verdict *v)
{
	long r = syscall(SYS_add_key, "user", "berth-probe", "x", (size_t)1,
			 PROBE_KEY_SPEC_PROCESS_KEYRING);
	judge(v, "add_key", r, errno, EPERM, EACCES, ENOSYS, 0);
}

/* BPF_MAP_CREATE of a one-entry array: CAP_BPF or CAP_SYS_ADMIN (with
 * unprivileged BPF disabled), and seccomp. */
static void try_bpf(struct verdict *v)
{
	union {
		struct {
			unsigned int map_type, key_size, value_size, max_entries;
		} map;
		unsigned char pad[128];
	} attr;
	memset(&attr, 0, sizeof attr);
	attr.map.map_type = PROBE_BPF_MAP_TYPE_ARRAY;
	attr.map.key_size = 4;
	attr.map.value_size = 4;
	attr.map.max_entries = 1;
	long fd = syscall(SYS_bpf, PROBE_BPF_MAP_CREATE, &attr, sizeof attr);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	judge(v, "bpf(BPF_MAP_CREATE)", fd, e, EPERM, ENOSYS, 0);
}

/* A user-space-only software counter on ourselves: perf_event_paranoid 2
 * lets anyone do that, so only seccomp (CAP_PERFMON/CAP_SYS_ADMIN only)
 * stops it. */
static void try_perf_event_open(struct verdict *v)
{
	/* struct perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes) layout. */
	struct {
		unsigned int type, size;
		unsigned long long config, sample_period, sample_type, read_format;
		unsigned long long flags; /* disabled:1 inherit:1 pinned:1 exclusive:1
					     exclude_user:1 exclude_kernel:1 exclude_hv:1 ... */
		unsigned int wakeup_events, bp_type;
		unsigned long long bp_addr;
	} attr;
	memset(&attr, 0, sizeof attr);
	attr.type = PROBE_PERF_TYPE_SOFTWARE;
	attr.size = sizeof attr;
	attr.config = PROBE_PERF_COUNT_SW_TASK_CLOCK;
	attr.flags = 1ULL << 0 /* disabled */ | 1ULL << 5 /* exclude_kernel */ |
		     1ULL << 6 /* exclude_hv */;
	long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0UL);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	judge(v, "perf_event_open", fd, e, EPERM, EACCES, ENOSYS, 0);
}

/* io_uring bypasses seccomp for the operations it performs; Docker's
 * profile no longer allows it. */
static void try_io_uring_setup(struct verdict *v)
{
	unsigned char params[120]; /* struct io_uring_params */
	memset(params, 0, sizeof params);
	long fd = syscall(SYS_io_uring_setup, 1, params);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	judge(v, "io_uring_setup", fd, e, EPERM, ENOSYS, 0);
}

/* A userfaultfd that can also catch kernel-mode faults (no
 * UFFD_USER_MODE_ONLY), the kind used to widen kernel race windows:
 * CAP_SYS_PTRACE unless vm.unprivileged_userfaultfd, and seccomp. */
static void try_userfaultfd(struct verdict *v)
{
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	judge(v, "userfaultfd", fd, e, EPERM, ENOSYS, 0);
}

/* The "shocker" escape: open a file by handle, outside our mount tree.
 * handle_to_path() checks CAP_DAC_READ_SEARCH (or CAP_SYS_ADMIN over the
 * mount) before it even reads the handle, so any errno but EPERM means the
 * check was passed. The handle is a real one if the filesystem gives one,
 * else a forged ext4-style handle for inode 2 (the root), as shocker used. */
static void try_open_by_handle_at(struct verdict *v)
{
	struct {
		unsigned int handle_bytes;
		int handle_type;
		unsigned char f_handle[128];
	} h;
	memset(&h, 0, sizeof h);
	h.handle_bytes = sizeof h.f_handle;
	int mount_id;
	if (syscall(SYS_name_to_handle_at, AT_FDCWD, "/etc/passwd", &h, &mount_id, 0) != 0) {
		memset(&h, 0, sizeof h);
		h.handle_bytes = 8;
		h.handle_type = PROBE_FILEID_INO32_GEN;
		unsigned int ino_gen[2] = {2, 0};
		memcpy(h.f_handle, ino_gen, sizeof ino_gen);
	}
	int mount_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mount_fd < 0) {
		escaped(v, "could not open / (%s): open_by_handle_at untested", errno_name(errno));
		return;
	}
	long fd = syscall(SYS_open_by_handle_at, mount_fd, &h, O_RDONLY | O_CLOEXEC);
	int e = errno;
	close(mount_fd);
	if (fd >= 0)
		close((int)fd);
	judge(v, "open_by_handle_at", fd, e, EPERM, ENOSYS, 0);
}

/* kexec_load checks CAP_SYS_BOOT (and kexec_load_disabled) first; then it
 * refuses more than KEXEC_SEGMENT_MAX segments with EINVAL, so with 17 a
 * failed defence still loads (or unloads) nothing. ENOSYS: no kexec in this
 * kernel, or seccomp. */
static void try_kexec_load(struct verdict *v)
{
	long r = syscall(SYS_kexec_load, 0UL, (unsigned long)PROBE_KEXEC_SEGMENT_MAX + 1, NULL, 0UL);
	judge(v, "kexec_load", r, errno, EPERM, ENOSYS, 0);
}

/* init_module checks CAP_SYS_MODULE (may_init_module) first, then refuses
 * an image shorter than an ELF header with ENOEXEC: nothing is loaded. */
static void try_init_module(struct verdict *v)
{
	static char empty[1];
	long r = syscall(SYS_init_module, empty, 0UL, "");
	judge(v, "init_module", r, errno, EPERM, ENOSYS, 0);
}

/* reboot(CAD_OFF) checks CAP_SYS_BOOT first; a success only makes
 * Ctrl-Alt-Del signal init instead of rebooting (what systemd sets anyway),
 * and in a child PID namespace the kernel answers CAD_OFF with EINVAL. */
static void try_reboot(struct verdict *v)
{
	long r = syscall(SYS_reboot, PROBE_REBOOT_MAGIC1, PROBE_REBOOT_MAGIC2,
			 PROBE_REBOOT_CMD_CAD_OFF, NULL);
	judge(v, "reboot(CAD_OFF)", r, errno, EPERM, 0);
}

/* swapon checks CAP_SYS_ADMIN before it looks the path up, so ENOENT for
 * this missing file means the check was passed. */
static void try_swapon(struct verdict *v)
{
	long r = syscall(SYS_swapon, "/nonexistent/berth-probe-swap", 0);
	judge(v, "swapon", r, errno, EPERM, 0);
}

/* settimeofday(NULL, NULL) runs the CAP_SYS_TIME check
 * (security_settime64) and then, with nothing to set, returns 0: a pure
 * privilege test that cannot move the clock. */
static void try_settimeofday(struct verdict *v)
{
	long r = syscall(SYS_settimeofday, NULL, NULL);
	judge(v, "settimeofday", r, errno, EPERM, 0);
}

/* Reading the kernel log: CAP_SYSLOG when dmesg_restrict, anyone
 * otherwise; Docker's profile allows syslog only with CAP_SYS_ADMIN. */
static void try_syslog(struct verdict *v)
{
	static char buf[4096];
	long r = syscall(SYS_syslog, PROBE_SYSLOG_ACTION_READ_ALL, buf, (int)sizeof buf);
	int e = errno;
	if (r >= 0) {
		escaped(v, "read %ld bytes of the kernel log", r);
		return;
	}
	judge(v, "syslog(READ_ALL)", r, e, EPERM, ENOSYS, 0);
}

/* /proc/kcore is masked (bound to /dev/null): opening it may work, but it
 * must read nothing. */
static void try_read_kcore(struct verdict *v)
{
	int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		refused(v, "open: %s", errno_name(errno));
		return;
	}
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf);
	int e = errno;
	close(fd);
	if (n > 0)
		escaped(v, "read %zd bytes of kernel memory from /proc/kcore", n);
	else if (n == 0)
		refused(v, "reads 0 bytes (masked)");
	else
		refused(v, "read: %s", errno_name(e));
}

/* Opening for writing is the test; nothing is ever written. */
static int open_for_write(const char *path, int *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	*err = errno;
	if (fd >= 0)
		close(fd);
	return fd;
}

/* /proc/sysrq-trigger is read-only (a write could crash or reboot the
 * host). */
static void try_sysrq(struct verdict *v)
{
	int e;
	if (open_for_write("/proc/sysrq-trigger", &e) >= 0) {
		escaped(v, "opened /proc/sysrq-trigger for writing");
		return;
	}
	if (e == EROFS || e == EACCES || e == EPERM || e == ENOENT)
		refused(v, "%s", errno_name(e));
	else
		escaped(v, "open /proc/sysrq-trigger for writing failed with %s, not a refusal",
			errno_name(e));
}

/* Opens each existing file of `paths` for writing; refused only if every
 * one that exists is refused. */
static void try_write_any(struct verdict *v, const char *const *paths)
{
	int tried = 0;
	char seen[256] = "";
	for (; *paths; paths++) {
		int e;
		if (open_for_write(*paths, &e) >= 0) {
			escaped(v, "opened %s for writing", *paths);
			return;
		}
		if (e == ENOENT)
			continue;
		if (e != EROFS && e != EACCES && e != EPERM) {
			escaped(v, "open %s for writing failed with %s, not a refusal", *paths,
				errno_name(e));
			return;
		}
		tried++;
		size_t len = strlen(seen);
		snprintf(seen + len, sizeof seen - len, "%s%s:%s", len ? " " : "", *paths,
			 errno_name(e));
	}
	if (tried)
		refused(v, "%s", seen);
	else
		refused(v, "none of the files exist");
}

/* /sys is mounted read-only. */
static void try_sys_write(struct verdict *v)
{
	static const char *const paths[] = {
		"/sys/kernel/uevent_helper", "/sys/class/net/lo/mtu",
		"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/profiling", NULL,
	};
	try_write_any(v, paths);
}

/* /proc/sys is remounted read-only. */
static void try_proc_sys_write(struct verdict *v)
{
	static const char *const paths[] = {
		"/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches",
		"/proc/sys/kernel/core_pattern", NULL,
	};
	try_write_any(v, paths);
}

/* A block device node for loop0 (harmless to read): CAP_MKNOD is in
 * Docker's default set, so creating the node may work; Landlock never
 * allows MAKE_BLOCK, and the devices cgroup refuses to open it (its check
 * comes before the driver's, so ENXIO would mean it was passed). */
static void try_mknod_block(struct verdict *v)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/probe-blk-%d", (int)getpid());
	if (mknod(path, S_IFBLK | 0600, makedev(7, 0)) != 0) {
		int e = errno;
		judge(v, "mknod block 7:0", -1, e, EPERM, EACCES, EROFS, 0);
		return;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(path);
	if (fd >= 0) {
		escaped(v, "made and opened block device 7:0 at %s", path);
		return;
	}
	if (e == EPERM || e == EACCES)
		refused(v, "node made, open refused: %s", errno_name(e));
	else
		escaped(v, "node made, open failed with %s after the devices check", errno_name(e));
}

/* CAP_NET_RAW: in Docker's default set, so only a drop refuses it. */
static void try_raw_socket(struct verdict *v)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	int e = errno;
	if (fd >= 0) {
		close(fd);
		escaped(v, "opened a raw ICMP socket");
		return;
	}
	judge(v, "socket(SOCK_RAW)", fd, e, EPERM, EACCES, 0);
}

/* Giving a file away to another uid needs CAP_CHOWN (in Docker's default
 * set). The file is our own, made for the purpose. */
static void try_chown_foreign(struct verdict *v)
{
	static const char *const dirs[] = {"/tmp", "/dev/shm", NULL};
	char path[64];
	int fd = -1, e = 0;
	for (const char *const *d = dirs; *d && fd < 0; d++) {
		snprintf(path, sizeof path, "%s/probe-chown-%d", *d, (int)getpid());
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		e = errno;
	}
	if (fd < 0) {
		escaped(v, "could not create a file to chown (%s): chown untested", errno_name(e));
		return;
	}
	close(fd);
	long r = chown(path, 1234, 1234);
	e = errno;
	unlink(path);
	if (r == 0) {
		escaped(v, "chowned a file to 1234:1234");
		return;
	}
	judge(v, "chown", r, e, EPERM, 0);
}

/* A char device node the devices cgroup allows (1:3, /dev/null's) in
 * /dev, a writable tmpfs, with CAP_MKNOD held: only Landlock (no
 * MAKE_CHAR right anywhere) refuses it. */
static void try_landlock_mknod(struct verdict *v)
{
	char path[64];
	snprintf(path, sizeof path, "/dev/probe-null-%d", (int)getpid());
	if (mknod(path, S_IFCHR | 0600, makedev(1, 3)) == 0) {
		unlink(path);
		escaped(v, "made char device 1:3 at %s", path);
		return;
	}
	judge(v, "mknod char 1:3 in /dev", -1, errno, EACCES, EPERM, EROFS, 0);
}

/* connect(2) to the abstract Unix socket named by $PROBE_ABSTRACT, which
 * a host process listens on in the same network namespace. Landlock's
 * abstract_unix_socket scope refuses it with EPERM (the socket is outside
 * the container's domain); ECONNREFUSED would mean no listener, which is
 * the test's mistake, so it counts as ESCAPED too. Not part of `all`. */
static void try_abstract_connect(struct verdict *v)
{
	const char *name = getenv("PROBE_ABSTRACT");
	if (!name || !*name || strlen(name) >= sizeof(((struct sockaddr_un *)0)->sun_path) - 1) {
		escaped(v, "PROBE_ABSTRACT names no socket");
		return;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		judge(v, "socket(AF_UNIX)", fd, errno, EPERM, EACCES, 0);
		return;
	}
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	size_t len = strlen(name);
	memcpy(addr.sun_path + 1, name, len);
	socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
	long r = connect(fd, (struct sockaddr *)&addr, addrlen);
	int e = errno;
	close(fd);
	if (r == 0) {
		escaped(v, "connect succeeded to @%s", name);
		return;
	}
	judge(v, "connect to an abstract socket", r, e, EPERM, 0);
}

static void hold(void)
{
	if (hold_ms > 0) {
		struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
		}
	}
}

/* Children that wait to be killed, until fork fails. The pids limit must
 * make fork fail with EAGAIN well before FORK_BOMB_MAX. With --hold-ms the
 * children stay alive that long after the verdict, so a test can check the
 * host meanwhile. */
static void try_fork_bomb(struct verdict *v)
{
	static pid_t kids[FORK_BOMB_MAX];
	int n = 0, e = 0;
	pid_t parent = getpid();
	while (n < FORK_BOMB_MAX) {
		pid_t p = fork();
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
		if (p < 0) {
			e = errno;
			break;
		}
		kids[n++] = p;
	}
	if (n == FORK_BOMB_MAX)
		escaped(v, "created %d processes without hitting a limit", n);
	else if (e == EAGAIN)
		refused(v, "fork failed with EAGAIN after %d children", n);
	else
		escaped(v, "fork failed with %s (not the pids limit) after %d children",
			errno_name(e), n);
	if (hold_ms > 0) {
		say("fork_bomb %s %s", v->escaped ? "ESCAPED" : "ok", v->detail);
		v->reported = 1;
		hold();
	}
	for (int i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < n; i++)
		waitpid(kids[i], NULL, 0);
}

/* Allocates and touches memory 1 MiB at a time. Under a memory limit the
 * OOM killer ends this process; reaching MEMORY_HOG_MAX_MIB (or malloc
 * failing) means the limit did not hold. */
static void try_memory_hog(struct verdict *v)
{
	long mib = 0;
	while (mib < MEMORY_HOG_MAX_MIB) {
		char *p = malloc(MEMORY_HOG_STEP_BYTES);
		if (!p) {
			escaped(v, "malloc failed after %ld MiB, but the process was not killed", mib);
			return;
		}
		memset(p, 0x5a, MEMORY_HOG_STEP_BYTES);
		mib++;
	}
	escaped(v, "allocated and touched %ld MiB without being killed", mib);
}

/* ---- driver ------------------------------------------------------------- */

enum { IN_CHILD = 1, IN_ALL = 2 };

struct attempt {
	const char *name;
	void (*run)(struct verdict *);
	int flags;
};

static const struct attempt ATTEMPTS[] = {
	{"mount", try_mount, IN_CHILD | IN_ALL},
	{"fsopen", try_fsopen, IN_CHILD | IN_ALL},
	{"pivot_root", try_pivot_root, IN_CHILD | IN_ALL},
	{"unshare_user", try_unshare_user, IN_CHILD | IN_ALL},
	{"unshare_mnt", try_unshare_mnt, IN_CHILD | IN_ALL},
	{"setns", try_setns, IN_CHILD | IN_ALL},
	{"sethostname", try_sethostname, IN_CHILD | IN_ALL},
	{"keyctl", try_keyctl, IN_CHILD | IN_ALL},
	{"add_key", try_add_key, IN_CHILD | IN_ALL},
	{"bpf", try_bpf, IN_CHILD | IN_ALL},
	{"perf_event_open", try_perf_event_open, IN_CHILD | IN_ALL},
	{"io_uring_setup", try_io_uring_setup, IN_CHILD | IN_ALL},
	{"userfaultfd", try_userfaultfd, IN_CHILD | IN_ALL},
	{"open_by_handle_at", try_open_by_handle_at, IN_CHILD | IN_ALL},
	{"kexec_load", try_kexec_load, IN_CHILD | IN_ALL},
	{"init_module", try_init_module, IN_CHILD | IN_ALL},
	{"reboot", try_reboot, IN_CHILD | IN_ALL},
	{"swapon", try_swapon, IN_CHILD | IN_ALL},
	{"settimeofday", try_settimeofday, IN_CHILD | IN_ALL},
	{"syslog", try_syslog, IN_CHILD | IN_ALL},
	{"read_kcore", try_read_kcore, IN_CHILD | IN_ALL},
	{"sysrq", try_sysrq, IN_CHILD | IN_ALL},
	{"sys_write", try_sys_write, IN_CHILD | IN_ALL},
	{"proc_sys_write", try_proc_sys_write, IN_CHILD | IN_ALL},
	{"mknod_block", try_mknod_block, IN_CHILD | IN_ALL},
	{"landlock_mknod", try_landlock_mknod, IN_CHILD | IN_ALL},
	/* Last: if it works it unmounts /proc for the whole container. */
	{"umount", try_umount, IN_CHILD | IN_ALL},
	{"raw_socket", try_raw_socket, IN_CHILD},
	{"chown_foreign", try_chown_foreign, IN_CHILD},
	{"abstract_connect", try_abstract_connect, IN_CHILD},
	{"fork_bomb", try_fork_bomb, 0},
	{"memory_hog", try_memory_hog, 0},
};

#define N_ATTEMPTS (sizeof ATTEMPTS / sizeof ATTEMPTS[0])

static void report(const char *name, const struct verdict *v)
{
	if (!v->reported)
		say("%s %s %s", name, v->escaped ? "ESCAPED" : "ok", v->detail);
}

/* Runs one attempt; returns 1 if it escaped. */
static int run_attempt(const struct attempt *a)
{
	struct verdict v = {0, 0, ""};
	if (!(a->flags & IN_CHILD)) {
		a->run(&v);
		report(a->name, &v);
		return v.escaped;
	}
	pid_t pid = fork();
	if (pid < 0) {
		say("%s ESCAPED could not fork to run the attempt (%s)", a->name, errno_name(errno));
		return 1;
	}
	if (pid == 0) {
		a->run(&v);
		report(a->name, &v);
		_exit(v.escaped ? 1 : 0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			say("%s ESCAPED lost the attempt's process (%s)", a->name, errno_name(errno));
			return 1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status) != 0;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
		say("%s ok killed by SIGSYS (seccomp)", a->name);
		return 0;
	}
	say("%s ESCAPED the attempt's process died of signal %d", a->name,
	    WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	return 1;
}

static const struct attempt *find(const char *name)
{
	for (size_t i = 0; i < N_ATTEMPTS; i++)
		if (strcmp(ATTEMPTS[i].name, name) == 0)
			return &ATTEMPTS[i];
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: probe [--hold-ms N] all|NAME...\nattempts:");
	for (size_t i = 0; i < N_ATTEMPTS; i++)
		fprintf(stderr, " %s", ATTEMPTS[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "--hold-ms") == 0) {
		hold_ms = atol(argv[i + 1]);
		i += 2;
	}
	if (i >= argc)
		usage();
	for (int j = i; j < argc; j++)
		if (strcmp(argv[j], "all") != 0 && !find(argv[j])) {
			fprintf(stderr, "probe: unknown attempt %s\n", argv[j]);
			usage();
		}
	int any = 0;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "all") == 0) {
			for (size_t k = 0; k < N_ATTEMPTS; k++)
				if (ATTEMPTS[k].flags & IN_ALL)
					any |= run_attempt(&ATTEMPTS[k]);
		} else {
			any |= run_attempt(find(argv[i]));
		}
	}
	return any ? 1 : 0;
}
