#!/usr/bin/env python3
"""crun given the work berth does at every start, and the paired
comparison of start latencies that says whether berth is as fast.

crun's bare default (`crun spec`) starts a container on a plain directory
with three capabilities, no seccomp filter and no cgroup namespace. berth
does more at every start, so the fair column gives crun the same work:

- an overlay root made for this run (upper and work directories created,
  overlayfs mounted before `crun run`, unmounted and removed after: berth
  does the same for every container, and `--rm` removes its upper layer);
- Docker's default seccomp profile (tests/data/docker-seccomp-default.json,
  resolved for x86-64 and Docker's default capabilities the way Docker
  does), which crun compiles at every start, as berth does for a custom
  profile (berth caches its compiled default: that saving is berth's);
- Docker's 14 default capabilities, berth's namespaces (mount, pid, ipc,
  uts, network, cgroup), the masked and read-only /proc paths of
  `crun spec`, no_new_privs off (berth's and Docker's default).

The mounts are made by this process with mount(2) inside the timed
region, not by helper programs, so crun pays the kernel's cost of the
work and nothing more.
"""
import ctypes
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from tools import Tool

REPO = Path(__file__).resolve().parent.parent
DOCKER_PROFILE = REPO / "tests" / "data" / "docker-seccomp-default.json"
DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
NAMESPACES = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount_overlay(lower, upper, work, target):
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    _check(_libc.mount(b"overlay", str(target).encode(), b"overlay", 0, opts), f"mount overlay on {target}")


def umount(target):
    _check(_libc.umount2(str(target).encode(), MNT_DETACH), f"umount {target}")


def _kernel_at_least(version):
    have = [int(x) for x in platform.release().split("-")[0].split(".")[:2]]
    want = [int(x) for x in version.split(".")[:2]]
    return have >= want


def docker_seccomp_for_oci():
    """Docker's profile resolved as Docker resolves it on x86-64 with its
    default capabilities: rules whose includes/excludes do not hold here
    are dropped, the rest kept as OCI seccomp rules."""
    profile = json.loads(DOCKER_PROFILE.read_text())
    arch = "amd64"
    rules = []
    for rule in profile["syscalls"]:
        inc, exc = rule.get("includes", {}), rule.get("excludes", {})
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= set(DOCKER_CAPS):
            continue
        if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
            continue
        if arch in exc.get("arches", []) or set(exc.get("caps", [])) & set(DOCKER_CAPS):
            continue
        out = {"names": rule["names"], "action": rule["action"]}
        for key in ("args", "errnoRet"):
            if rule.get(key) is not None:
                out[key] = rule[key]
        rules.append(out)
    return {
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile.get("defaultErrnoRet", 1),
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    }


class CrunEqualWork(Tool):
    """crun on a fresh overlay root per run, with Docker's seccomp profile,
    capabilities and berth's namespaces (see the module's comment). Only
    start latency: the other rows are the bare runtime's."""
    name = "crun_equal"

    def __init__(self, work):
        self.work = work
        self.root = work / "crun-equal"
        self.seccomp = None

    def available(self):
        return shutil.which("crun") is not None and (self.work / "bundle").is_dir() and DOCKER_PROFILE.is_file()

    def start(self):
        self.root.mkdir(exist_ok=True)
        self.seccomp = docker_seccomp_for_oci()

    def stop(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def config(self, args, rootfs):
        cfg = json.loads((self.work / "bundle" / "config.template.json").read_text())
        cfg["process"]["args"] = args
        cfg["process"]["terminal"] = False
        cfg["process"]["noNewPrivileges"] = False
        caps = {k: list(DOCKER_CAPS) for k in ("bounding", "effective", "permitted")}
        cfg["process"]["capabilities"] = caps
        cfg["root"] = {"path": str(rootfs), "readonly": False}
        linux = cfg.setdefault("linux", {})
        linux["namespaces"] = [{"type": t} for t in NAMESPACES]
        linux["seccomp"] = self.seccomp
        return cfg

    def run_true(self, i):
        """Seconds for one start→exit, the overlay made and removed inside
        the timed region."""
        run_dir = self.root / f"run-{i}"
        bundle, upper, workdir, rootfs = (run_dir / d for d in ("bundle", "upper", "work", "rootfs"))
        bundle.mkdir(parents=True)
        (bundle / "config.json").write_text(json.dumps(self.config(["/bin/true"], rootfs)))
        cmd = ["crun", "run", "--bundle", str(bundle), f"bench-eq-{os.getpid()}-{i}"]
        t0 = time.perf_counter()
        for d in (upper, workdir, rootfs):
            d.mkdir()
        mount_overlay(self.work / "bundle" / "rootfs", upper, workdir, rootfs)
        try:
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finally:
            umount(rootfs)
            shutil.rmtree(upper)
            shutil.rmtree(workdir)
        dt = time.perf_counter() - t0
        shutil.rmtree(run_dir)
        if r.returncode != 0:
            raise RuntimeError(f"crun (equal work) failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
        return dt


def median_ci(values, confidence=0.95):
    """The sample median and a distribution-free confidence interval for
    the true median: order statistics chosen from the binomial(n, 1/2)
    distribution (no assumption about how the ratios are spread)."""
    s = sorted(values)
    n = len(s)
    # k: how many order statistics from each end lie outside the interval,
    # the largest with P(Binomial(n, 1/2) <= k - 1) <= alpha / 2.
    alpha, cdf, k = 1 - confidence, 0.0, 0
    for j in range(n + 1):
        cdf += math.comb(n, j) / 2 ** n
        if cdf > alpha / 2:
            break
        k = j + 1
    if k == 0:
        return statistics.median(s), s[0], s[-1]
    return statistics.median(s), s[k - 1], s[n - k]


def paired(berth_run, peer_run, pairs, warmup=3):
    """`pairs` back-to-back (berth, peer) starts, the order swapped every
    pair so neither always follows the other; each pair's ratio of times,
    their median and its 95 % interval."""
    ratios, berth_ms, peer_ms = [], [], []
    for i in range(pairs + warmup):
        if i % 2:
            p, b = peer_run(i), berth_run(i)
        else:
            b, p = berth_run(i), peer_run(i)
        if i < warmup:
            continue
        ratios.append(b / p)
        berth_ms.append(b * 1000)
        peer_ms.append(p * 1000)
    med, lo, hi = median_ci(ratios)
    return {
        "pairs": len(ratios),
        "ratio_median": med,
        "ratio_ci95": [lo, hi],
        "berth_median_ms": statistics.median(berth_ms),
        "peer_median_ms": statistics.median(peer_ms),
        "met": hi <= 1.0,
    }
