#!/usr/bin/env python3
"""What container hardening (seccomp, Landlock, capabilities, cgroups,
overlayfs) costs a running program: the same static binary
(tests/escape/bench.c) natively and inside containers, side by side,
interleaved per round, medians of N rounds. The program times itself, so
container start-up is not part of any number.

    hardening.py --berth BIN [--rounds N] [--work DIR] [--json PATH]
                 [--append-to DIR] [--no-podman] [--native-only]

Columns (one run, every round runs every column for every job, in an order
that rotates from round to round so load drift hits all alike):

  native             chroot into a tree holding the same files (same paths)
  berth default      `berth run --rm`
  berth no-seccomp   ... --security-opt seccomp=unconfined
  berth no-landlock  ... --security-opt landlock=off
  podman default     `podman run --rm` (crun, podman's default seccomp profile)
  podman unconfined  ... --security-opt seccomp=unconfined

Podman runs on its own storage under WORK (the machine's podman state is
never touched) and is skipped, with the reason, when it is not installed.

Jobs: a CPU-bound loop (should cost nothing), 2M getppid calls, 1M 64-byte
reads of /dev/zero, 400k 4 KiB preads of a file in the image, 200k stat()
and 100k open+close of that file (open is checked by Landlock, stat is
not). Inside containers the file is on overlayfs, natively on the host's
filesystem. Needs root, cc with a static libc, and busybox-static.

--json PATH writes the results as JSON; --append-to DIR appends the tables
to DIR/results.md and adds them as "hardening" to DIR/results.json (what
benches/run.sh uses, after bench.py has written those files).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from tools import Berth, append_results  # noqa: E402

REF = "localhost/bench/hardening:latest"
JOBS = ["cpu", "getppid", "read_zero", "read_file", "stat", "open_close"]
IN_IMAGE = "/usr/local/bin/bench"
DATA = "usr/local/share/bench/data"  # bench.c's DATA_PATH, without the leading /
SIDES = ["native", "berth", "berth_noseccomp", "berth_nolandlock", "podman", "podman_unconfined"]
LABELS = {
    "native": "native",
    "berth": "berth default",
    "berth_noseccomp": "berth no-seccomp",
    "berth_nolandlock": "berth no-landlock",
    "podman": "podman default",
    "podman_unconfined": "podman unconfined",
}
BERTH_FLAGS = {
    "berth": [],
    "berth_noseccomp": ["--security-opt", "seccomp=unconfined"],
    "berth_nolandlock": ["--security-opt", "landlock=off"],
}
PODMAN_FLAGS = {
    "podman": [],
    "podman_unconfined": ["--security-opt", "seccomp=unconfined"],
}


def build_tree(work):
    """WORK/image: the busybox rootfs plus the static bench binary and a
    4 KiB data file, the single layer of the image both berth and podman
    run. WORK/native: the bench binary, the data file and /dev/zero at the
    same paths, for the native side's chroot."""
    image = work / "image"
    subprocess.run(["bash", str(REPO / "scripts/busybox-rootfs.sh"), str(image)], check=True, stdout=subprocess.DEVNULL)
    (image / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    subprocess.run(["cc", "-static", "-O2", "-o", str(image / IN_IMAGE.lstrip("/")), str(REPO / "tests/escape/bench.c")],
                   check=True)
    (image / DATA).parent.mkdir(parents=True, exist_ok=True)
    (image / DATA).write_bytes(bytes(i % 251 for i in range(4096)))
    native = work / "native"
    for rel in (IN_IMAGE.lstrip("/"), DATA):
        (native / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(image / rel, native / rel)
    if os.geteuid() == 0:
        (native / "dev").mkdir(exist_ok=True)
        if not (native / "dev/zero").exists():
            os.mknod(native / "dev/zero", 0o666 | 0o020000, os.makedev(1, 5))
    return image, native


def import_berth(work, berth_bin, image):
    layout = work / "bench-oci"
    subprocess.run(["bash", str(REPO / "scripts/mkimage.sh"), "--format", "oci", "--ref", REF, str(layout), str(image)],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([berth_bin, "import", str(layout), "--root", str(work / "berth-root")], check=True, stdout=subprocess.DEVNULL)


class Podman:
    """podman on its own storage under WORK/podman; everything it creates
    there is removed again by cleanup()."""

    def __init__(self, work):
        self.dir = work / "podman"
        self.base = ["podman", "--root", str(self.dir / "root"), "--runroot", str(self.dir / "run")]
        self.runtime = "crun" if shutil.which("crun") else None
        # Without CAP_SYS_RESOURCE, podman's default rlimits fail to apply
        # here (MACHINE.md); pin them low enough for the runtime to set.
        self.run = self.base + ["run", "--rm", "--network", "none",
                                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
        if self.runtime:
            self.run += ["--runtime", self.runtime]
        self.imported = False
        self.cgroup_parents_before = set(libpod_parents())

    def import_image(self, image, work):
        tar = work / "image.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(image), "-cf", str(tar), "."], check=True)
        self.imported = True  # from here on, cleanup() has something to remove
        subprocess.run(self.base + ["import", str(tar), REF], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tar.unlink()

    def version(self):
        r = subprocess.run(["podman", "--version"], capture_output=True, text=True)
        return r.stdout.strip()

    def cleanup(self):
        if not self.imported:
            return
        for cmd in (["rm", "--all", "--force", "--time", "0"], ["rmi", "--all", "--force"]):
            r = subprocess.run(self.base + cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"hardening: podman {cmd[0]}: {r.stderr.strip()[-300:]}", file=sys.stderr)
        # libpod_parent is podman's shared parent cgroup: taken away only
        # if this run created it and it is empty again.
        for d in set(libpod_parents()) - self.cgroup_parents_before:
            try:
                d.rmdir()
            except OSError:
                pass


def libpod_parents():
    root = Path("/sys/fs/cgroup")
    return [d for d in (list(root.glob("*/libpod_parent")) + [root / "libpod_parent"]) if d.is_dir()]


def run_ns(cmd, env=None):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return int(r.stdout.strip().splitlines()[-1])


def commands(native, berth, podman):
    """side -> function(job) -> (argv, env)."""
    cmds = {}
    if os.geteuid() == 0:
        cmds["native"] = lambda job: (["chroot", str(native), IN_IMAGE, job], None)
    else:  # --native-only as a user: the same files, longer paths
        def direct(job):
            extra = [str(native / DATA)] if job in ("read_file", "stat", "open_close") else []
            return [str(native / IN_IMAGE.lstrip("/")), job] + extra, None
        cmds["native"] = direct
    if berth:
        for side, flags in BERTH_FLAGS.items():
            cmds[side] = lambda job, f=flags: ([berth.bin, "run", "--rm"] + f + [REF, IN_IMAGE, job], berth.env)
    if podman:
        for side, flags in PODMAN_FLAGS.items():
            cmds[side] = lambda job, f=flags: (podman.run + f + [REF, IN_IMAGE, job], None)
    return cmds


def seccomp_modes(cmds):
    """What each container side really got: /proc/self/status's Seccomp
    line (0 none, 2 filter), so a flag that silently did nothing shows."""
    out = {}
    for side, cmd in cmds.items():
        if side == "native":
            continue
        argv, env = cmd("cpu")
        argv = argv[:-2] + ["grep", "^Seccomp:", "/proc/self/status"]
        r = subprocess.run(argv, env=env, capture_output=True, text=True)
        out[side] = r.stdout.split()[-1] if r.returncode == 0 and r.stdout.split() else f"? ({r.stderr.strip()[-200:]})"
    return out


def measure(cmds, rounds):
    """Round-robin over jobs and sides; which side goes first rotates with
    the round and the job, so drift in the machine's load hits all alike."""
    sides = [s for s in SIDES if s in cmds]
    times = {job: {s: [] for s in sides} for job in JOBS}
    for i in range(rounds):
        for j, job in enumerate(JOBS):
            k = (i + j) % len(sides)
            for side in sides[k:] + sides[:k]:
                argv, env = cmds[side](job)
                times[job][side].append(run_ns(argv, env))
        print(f"hardening: round {i + 1}/{rounds} done", file=sys.stderr)
    return times


def summarize(times, rounds, extra):
    res = {"rounds": rounds, "columns": [s for s in SIDES if s in next(iter(times.values()))], "labels": LABELS, "jobs": {}}
    for job, by_side in times.items():
        row = {}
        nat = statistics.median(by_side["native"])
        for side, v in by_side.items():
            med = statistics.median(v)
            row[side] = {"median_ms": med / 1e6, "ratio_to_native": med / nat, "runs_ms": [x / 1e6 for x in v]}
        if "berth" in row and "podman" in row:
            row["berth_over_podman"] = row["berth"]["median_ms"] / row["podman"]["median_ms"]
        res["jobs"][job] = row
    res.update(extra)
    return res


def report(res):
    cols = SIDES
    rounds = res["rounds"]
    head = "| job | " + " | ".join(LABELS[c] for c in cols) + " |"
    sep = "|---" * (len(cols) + 1) + "|"
    lines = [f"Medians of {rounds} interleaved rounds, in ms (each job times itself inside the container):", "", head, sep]
    for job, row in res["jobs"].items():
        lines.append(f"| {job} | " + " | ".join(f"{row[c]['median_ms']:.1f}" if c in row else "–" for c in cols) + " |")
    lines += ["", "Ratio to native:", "", head, sep]
    for job, row in res["jobs"].items():
        lines.append(f"| {job} | " + " | ".join(f"{row[c]['ratio_to_native']:.2f}×" if c in row else "–" for c in cols) + " |")
    if any("berth_over_podman" in r for r in res["jobs"].values()):
        lines += ["", "berth default ÷ podman default:", ""]
        for job, row in res["jobs"].items():
            if "berth_over_podman" in row:
                lines.append(f"- {job}: {row['berth_over_podman']:.2f}")
    notes = []
    if res.get("seccomp_mode"):
        notes.append("Seccomp mode seen inside (2 = filter, 0 = none): "
                     + ", ".join(f"{LABELS[s]} {m}" for s, m in res["seccomp_mode"].items()))
    if res.get("podman_skipped"):
        notes.append(f"podman skipped: {res['podman_skipped']}")
    elif res.get("podman"):
        notes.append(f"podman: {res['podman']['version']}, runtime {res['podman']['runtime'] or 'default'}")
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def remove_cgroup_parent(name):
    for h in Path("/sys/fs/cgroup").iterdir():
        d = h / name
        if d.is_dir():
            try:
                d.rmdir()
            except OSError:
                pass


def unmount_under(path):
    """Whatever podman or a killed container left mounted beneath WORK."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    prefix = str(path) + "/"
    points = sorted((ln.split()[4] for ln in lines if ln.split()[4].startswith(prefix)), reverse=True)
    for p in points:
        subprocess.run(["umount", "-l", p], stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", default=str(REPO / "target/debug/berth"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--work", type=Path, help="scratch directory (default: a new temporary one, removed afterwards)")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    ap.add_argument("--append-to", type=Path, metavar="DIR", help="append to DIR/results.md and DIR/results.json")
    ap.add_argument("--no-podman", action="store_true", help="leave podman out even if it is installed")
    ap.add_argument("--native-only", action="store_true", help="only the native column (no daemon, no root needed)")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    if not a.native_only and os.geteuid() != 0:
        sys.exit("hardening: run as root (or pass --native-only)")
    # A SIGTERM (a CI timeout, say) still runs the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    own_work = a.work is None
    work = (a.work or Path(tempfile.mkdtemp(prefix="berth-hardening-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    berth = podman = None
    extra = {"machine": os.uname().release, "nproc": os.cpu_count()}
    try:
        image, native = build_tree(work)
        if not a.native_only:
            import_berth(work, a.berth, image)
            berth = Berth(a.berth, work)
            berth.start()
            if a.no_podman:
                extra["podman_skipped"] = "--no-podman"
            elif not shutil.which("podman"):
                extra["podman_skipped"] = "podman is not installed"
            else:
                podman = Podman(work)
                podman.import_image(image, work)
                extra["podman"] = {"version": podman.version(), "runtime": podman.runtime}
            if extra.get("podman_skipped"):
                print(f"hardening: podman skipped: {extra['podman_skipped']}", file=sys.stderr)
        cmds = commands(native, berth, podman)
        # Throwaway runs: the first container of each kind pays for cold caches.
        for side, cmd in cmds.items():
            argv, env = cmd("getppid")
            run_ns(argv, env)
        extra["seccomp_mode"] = seccomp_modes(cmds)
        res = summarize(measure(cmds, a.rounds), a.rounds, extra)
    finally:
        if podman:
            podman.cleanup()
        if berth:
            berth.stop()
            remove_cgroup_parent(f"berth-bench-{os.getpid()}")
        unmount_under(work)
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    md = report(res)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2))
    if a.append_to:
        append_results(a.append_to.resolve(), "hardening", "Hardening overhead inside containers", res, md)
    print(md)


if __name__ == "__main__":
    main()
