#!/usr/bin/env python3
"""Start latency with CNI networking against none, and podman's default
network against none, interleaved in one run (medians of N rounds):
`berth run --rm [--network cni] IMAGE /bin/true` through a daemon, and
`podman run --rm [--network none] IMAGE /bin/true`.

    network.py --berth BIN [--rounds N] [--work DIR]

berth uses its built-in CNI list (bridge + host-local + portmap +
firewall); podman uses its own default bridge network (netavark or CNI,
whichever it is configured with). Needs root, busybox-static,
containernetworking-plugins; podman only if installed.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from tools import Berth, REF  # noqa: E402


def timed(cmd, env=None):
    t = time.monotonic()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.monotonic() - t) * 1000


def build(work, berth_bin):
    rootfs = work / "rootfs"
    subprocess.run(["bash", str(REPO / "scripts/busybox-rootfs.sh"), str(rootfs)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["bash", str(REPO / "scripts/mkimage.sh"), "--format", "oci", "--ref", REF, str(work / "oci"), str(rootfs)],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([berth_bin, "import", str(work / "oci"), "--root", str(work / "berth-root")], check=True, stdout=subprocess.DEVNULL)
    return rootfs


def podman_setup(work, rootfs):
    if not shutil.which("podman"):
        return None
    base = ["podman", "--root", str(work / "podman/root"), "--runroot", str(work / "podman/run")]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(base + ["import", "-", REF], stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
    tar.wait()
    return base + ["run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", default=str(REPO / "target/debug/berth"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="berth-netbench-"))
    berth_bin = os.path.abspath(a.berth)
    tool = Berth(berth_bin, work)
    podman = None
    try:
        rootfs = build(work, berth_bin)
        podman = podman_setup(work, rootfs)
        tool.start()
        cases = {
            "berth none": [berth_bin, "run", "--rm", REF, "/bin/true"],
            "berth cni": [berth_bin, "run", "--rm", "--network", "cni", REF, "/bin/true"],
        }
        if podman:
            cases["podman none"] = podman + ["--network", "none", REF, "/bin/true"]
            cases["podman default net"] = podman + [REF, "/bin/true"]
        times = {k: [] for k in cases}
        for name, cmd in cases.items():  # warm-up
            timed(cmd, tool.env)
        for r in range(a.rounds):
            order = list(cases.items())
            order = order[r % len(order):] + order[:r % len(order)]
            for name, cmd in order:
                times[name].append(timed(cmd, tool.env))
        med = {k: statistics.median(v) for k, v in times.items()}
        print("| start with | median ms | p90 ms | vs its own none |")
        print("|---|---|---|---|")
        for k, v in times.items():
            base = med["berth none"] if k.startswith("berth") else med.get("podman none", 1)
            p90 = sorted(v)[int(len(v) * 0.9) - 1]
            print(f"| {k} | {med[k]:.1f} | {p90:.1f} | {med[k] / base:.2f}x |")
        if podman:
            print(f"\nberth cni / podman default net: {med['berth cni'] / med['podman default net']:.2f}x")
    finally:
        tool.stop()
        if podman:
            subprocess.run(podman[:5] + ["rm", "-af"], capture_output=True)
            subprocess.run(podman[:5] + ["rmi", "-af"], capture_output=True)
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
