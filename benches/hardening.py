#!/usr/bin/env python3
"""What berth's hardening (seccomp, Landlock, capabilities, cgroups) costs a
running program: the same static binary (tests/escape/bench.c) natively and
inside `berth run --rm`, interleaved, medians of N rounds. The program times
itself, so container start-up is not part of any number.

    hardening.py --berth BIN [--rounds N] [--work DIR] [--native-only]

Jobs: a CPU-bound loop (should cost nothing), 2M getppid calls and 1M
64-byte reads of /dev/zero (every call passes the seccomp filter). Needs
root, cc with a static libc, and busybox-static (for the image's shell).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from tools import Berth  # noqa: E402

REF = "localhost/bench/hardening:latest"
JOBS = ["cpu", "getppid", "read_zero"]
IN_IMAGE = "/usr/local/bin/bench"


def build_image(work, berth_bin):
    """bench.c, statically linked, as a layer on top of busybox; imported
    into the store that tools.Berth's daemon uses (WORK/berth-root)."""
    layer = work / "bench-layer"
    (layer / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    native = layer / "usr/local/bin/bench"
    subprocess.run(["cc", "-static", "-O2", "-o", str(native), str(REPO / "tests/escape/bench.c")], check=True)
    rootfs = work / "rootfs"
    subprocess.run(["bash", str(REPO / "scripts/busybox-rootfs.sh"), str(rootfs)], check=True, stdout=subprocess.DEVNULL)
    layout = work / "bench-oci"
    subprocess.run(["bash", str(REPO / "scripts/mkimage.sh"), "--format", "oci", "--ref", REF, str(layout), str(rootfs), str(layer)],
                   check=True)
    subprocess.run([berth_bin, "import", str(layout), "--root", str(work / "berth-root")], check=True, stdout=subprocess.DEVNULL)
    return native


def elapsed_ns(cmd, env=None):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return int(r.stdout.strip().splitlines()[-1])


def measure(native, berth, rounds):
    """Round-robin over jobs and sides, alternating which side goes first,
    so drift in the machine's load hits both alike."""
    times = {(job, side): [] for job in JOBS for side in ("native", "berth")}
    for i in range(rounds):
        for job in JOBS:
            sides = [("native", [str(native), job], None)]
            if berth:
                sides.append(("berth", [berth.bin, "run", "--rm", REF, IN_IMAGE, job], berth.env))
            if i % 2:
                sides.reverse()
            for side, cmd, env in sides:
                times[(job, side)].append(elapsed_ns(cmd, env))
        print(f"hardening: round {i + 1}/{rounds} done", file=sys.stderr)
    return times


def fmt_ms(ns):
    return "–" if ns is None else f"{ns / 1e6:.1f} ms"


def report(times, rounds):
    lines = [f"| job ({rounds} rounds) | native median | berth median | overhead |", "|---|---|---|---|"]
    for job in JOBS:
        nat = statistics.median(times[(job, "native")])
        b = times[(job, "berth")]
        ber = statistics.median(b) if b else None
        over = "–" if ber is None else f"{(ber / nat - 1) * 100:+.1f} %"
        lines.append(f"| {job} | {fmt_ms(nat)} | {fmt_ms(ber)} | {over} |")
    return "\n".join(lines) + "\n"


def remove_cgroup_parent(name):
    for h in Path("/sys/fs/cgroup").iterdir():
        d = h / name
        if d.is_dir():
            try:
                d.rmdir()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", default=str(REPO / "target/debug/berth"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--work", type=Path, help="scratch directory (default: a new temporary one, removed afterwards)")
    ap.add_argument("--native-only", action="store_true", help="skip the berth half (no daemon, no root needed)")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    work = (a.work or Path(tempfile.mkdtemp(prefix="berth-hardening-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    berth = None
    try:
        if a.native_only:
            layer = work / "bench-native"
            layer.mkdir(exist_ok=True)
            native = layer / "bench"
            subprocess.run(["cc", "-static", "-O2", "-o", str(native), str(REPO / "tests/escape/bench.c")], check=True)
        else:
            if os.geteuid() != 0:
                sys.exit("hardening: run as root (or pass --native-only)")
            native = build_image(work, a.berth)
            berth = Berth(a.berth, work)
            berth.start()
            # One throwaway run: the first container pays for cold caches.
            elapsed_ns([berth.bin, "run", "--rm", REF, IN_IMAGE, "getppid"], berth.env)
        print(report(measure(native, berth, a.rounds), a.rounds))
    finally:
        if berth:
            berth.stop()
            remove_cgroup_parent(f"berth-bench-{os.getpid()}")
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
